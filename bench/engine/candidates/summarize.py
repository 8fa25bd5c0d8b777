#!/usr/bin/python3
"""Tabulates run.sh's rounds: per layer, the median over rounds of each library's GFLOP/s.

Outpost's figure is onnx_conv_bench's first micro-kernel column (the one the engine picks,
BestGemmArch); each candidate's is its per-round median. Percentages are of the highest
measured one-core FMA peak. Not part of the build (see run.sh).
"""
import re
import statistics
import sys

NUM = r"([0-9.]+)"


def outpost_round(path):
    peak, rows = None, {}
    for line in open(path):
        m = re.match(r"peak: measured " + NUM, line)
        if m:
            peak = float(m.group(1))
            continue
        m = re.match(r"((?:r18|mv2) \S+(?: \S+)?)\s+" + NUM + r"\s+" + NUM + r"\s", line)
        if m:
            rows[m.group(1)] = float(m.group(3))
    return peak, rows


def candidates_round(path):
    peak, rows = None, {}
    for line in open(path):
        m = re.match(r"peak: measured " + NUM, line)
        if m:
            peak = float(m.group(1))
            continue
        if not line.startswith(("r18", "mv2")):
            continue
        name = line[:20].strip()
        cells = line[20:].split("|")
        mflop = float(cells[0])
        blas = re.findall(r"[0-9.]+", cells[1])
        dnn = re.findall(r"[0-9.]+", cells[2])
        xnn = re.findall(r"[0-9.]+", cells[3])
        rows[name] = (mflop, float(blas[0]), float(blas[3]), float(dnn[0]), float(xnn[0]))
    return peak, rows


def main():
    out, rounds = sys.argv[1], int(sys.argv[2])
    ours = [outpost_round(f"{out}/outpost.{i}.txt") for i in range(1, rounds + 1)]
    cand = [candidates_round(f"{out}/candidates.{i}.txt") for i in range(1, rounds + 1)]
    # Neighbours only ever slow the FMA loop down, so the highest measurement is the core's.
    peaks = [p for p, _ in ours] + [p for p, _ in cand]
    peak = max(peaks)
    print(f"one-core FMA peak: {peak:.1f} GFLOP/s, the highest of {len(peaks)} measurements "
          f"(lowest {min(peaks):.1f})")
    print("| layer | MFLOP | Outpost | OpenBLAS im2col+sgemm | oneDNN 2.6 | "
          "XNNPACK | fastest library / Outpost |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals = {}
    for name in cand[0][1]:
        med = lambda xs: statistics.median(xs)
        o = med([r[name] for _, r in ours])
        mflop = cand[0][1][name][0]
        b, share, d, x = (med([r[name][i] for _, r in cand]) for i in (1, 2, 3, 4))
        pct = lambda g: f"{g:.0f} ({100 * g / peak:.0f}%)"
        best = max(b, d, x)
        print(f"| {name} | {mflop:.1f} | {pct(o)} | {pct(b)}; im2col {share:.0f}% | {pct(d)} | "
              f"{pct(x)} | {best / o:.2f}x |")
        group = "resnet18 3x3" if "3x3" in name and name.startswith("r18") else (
            "mobilenet_v2 depthwise" if "dw" in name else "1x1 and stem")
        t = totals.setdefault(group, [0.0] * 5)
        for i, g in enumerate((o, b, d, x)):
            t[i] += mflop / g
        t[4] += mflop
    print()
    print("| layers (time summed, ms; lower is faster) | Outpost | OpenBLAS | oneDNN | XNNPACK |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for group, t in totals.items():
        print(f"| {group} | {t[0]:.2f} | {t[1]:.2f} | {t[2]:.2f} | {t[3]:.2f} |")


if __name__ == "__main__":
    main()
