// How the dashboard writes numbers and times. The browser tests parse what these write, so
// a change here is a change to tests/web/dashboard.test.mjs too.

export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

// "2026-11-20 14:05 UTC": the hub's operators span time zones; UTC is unambiguous.
export function time(ms: number | null): string {
  if (ms === null || ms === undefined) return '—';
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

export function days(d: number | null): string {
  return d === null || d === undefined ? '—' : `${d.toFixed(1)} d`;
}

export function rate(r: number | null): string {
  return r === null ? '—' : `${(r * 100).toFixed(2)} %`;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}
