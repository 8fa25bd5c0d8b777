#!/usr/bin/python3
"""Reports the longest functions of Outpost's C++ sources.

    scripts/function_lengths.py [--over N] [--limit N] [--all] [ROOT]

Functions are found by universal-ctags (function tags with their end line); a function's
length is end - start + 1, its signature and closing brace included, lambdas inside it
counted as part of it. Left out: tests (*_test.cc, tests/, */testing/), fuzz targets,
benchmarks (bench/), generated code (build folders, */generated/), and a function whose
definition is preceded, on the line just above, by the comment

    // function-length: table-driven (WHY)

which a kernel or a table may carry when splitting it would hide its structure.

Prints the counts over 100, 120 and 150 lines and every function over --over (default 100).
With --limit N it exits 1 when a function that is not left out has more than N lines.
"""
import argparse
import os
import re
import subprocess
import sys

SOURCE = re.compile(r"\.(cc|h)$")
MARKER = "function-length: table-driven"


def tracked_sources(root):
    files = subprocess.run(["git", "-C", root, "ls-files"], check=True, capture_output=True,
                           text=True).stdout.split("\n")
    for path in files:
        if not SOURCE.search(path):
            continue
        parts = path.split("/")
        if parts[0] in ("tests", "bench") or "testing" in parts or "generated" in parts:
            continue
        if parts[0].startswith("build") or "node_modules" in parts:
            continue
        if path.endswith("_test.cc") or path.endswith("_fuzz.cc"):
            continue
        yield path


def functions(root, paths):
    out = subprocess.run(
        ["ctags", "--language-force=C++", "--kinds-C++=f", "--fields=+ne", "--extras=+q",
         "-o", "-", *paths],
        cwd=root, check=True, capture_output=True, text=True).stdout
    seen = set()
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) < 4:
            continue
        name, path = fields[0], fields[1]
        start = end = None
        scope = ""
        for f in fields[3:]:
            if f.startswith("line:"):
                start = int(f[5:])
            elif f.startswith("end:"):
                end = int(f[4:])
            elif f.startswith(("class:", "struct:")):
                scope = f.split(":", 1)[1]
        if start is None or end is None:
            continue
        key = (path, start)
        if key in seen:  # --extras=+q lists qualified names twice
            continue
        seen.add(key)
        qualified = f"{scope.split('::')[-1]}::{name}" if scope and "::" not in name else name
        yield path, start, end, qualified


def marked(root, path, start, cache={}):
    if path not in cache:
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            cache[path] = f.read().split("\n")
    lines = cache[path]
    return start >= 2 and MARKER in lines[start - 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?",
                        default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--over", type=int, default=100, help="list functions over this")
    parser.add_argument("--limit", type=int, help="exit 1 when a function is longer")
    args = parser.parse_args()

    paths = sorted(tracked_sources(args.root))
    found = []
    exempt = []
    for path, start, end, name in functions(args.root, paths):
        length = end - start + 1
        (exempt if marked(args.root, path, start) else found).append((length, path, start, name))
    found.sort(reverse=True)
    for bound in (100, 120, 150):
        print(f"functions over {bound} lines: {sum(1 for f in found if f[0] > bound)}")
    print(f"table-driven, left out: {len(exempt)}")
    for length, path, start, name in found:
        if length <= args.over:
            break
        print(f"{length:5d}  {path}:{start}  {name}")
    if args.limit is not None:
        over = [f for f in found if f[0] > args.limit]
        if over:
            print(f"{len(over)} functions are longer than {args.limit} lines", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
