// Small SVG plots drawn without a library: the ROC curve and the reliability diagram of the
// registry page, and the colour scale of the drift map. Colours are SVG attributes, and
// table cells are coloured through the CSSOM, so the page's style-src stays 'self'.

const SVG = 'http://www.w3.org/2000/svg';

function svgEl(tag: string, attrs: Record<string, string | number>): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export interface Curve {
  label: string;
  color: string;
  points: [number, number][];
  dash?: boolean;
}

// A square plot of curves over [0,1] × [0,1] with axes, a diagonal and a legend.
export function unitPlot(id: string, title: string, xLabel: string, yLabel: string,
  curves: Curve[], dots = false): SVGSVGElement {
  const size = 300;
  const pad = 48;
  const inner = size - 2 * pad;
  const svg = svgEl('svg', { id, width: size + 140, height: size, viewBox: `0 0 ${size + 140} ${size}`, role: 'img' }) as SVGSVGElement;
  const x = (v: number) => pad + v * inner;
  const y = (v: number) => size - pad - v * inner;
  svg.append(svgEl('rect', { x: pad, y: pad, width: inner, height: inner, fill: '#fff', stroke: '#adb5bd' }));
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const tx = svgEl('text', { x: x(t), y: size - pad + 14, 'font-size': 10, 'text-anchor': 'middle', fill: '#495057' });
    tx.textContent = String(t);
    const ty = svgEl('text', { x: pad - 6, y: y(t) + 3, 'font-size': 10, 'text-anchor': 'end', fill: '#495057' });
    ty.textContent = String(t);
    svg.append(tx, ty, svgEl('line', { x1: x(t), y1: y(0), x2: x(t), y2: y(1), stroke: '#f1f3f5' }));
  }
  svg.append(svgEl('line', { x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: '#ced4da', 'stroke-dasharray': '4 4' }));
  const head = svgEl('text', { x: pad, y: pad - 10, 'font-size': 12, 'font-weight': 600, fill: '#212529' });
  head.textContent = title;
  const xl = svgEl('text', { x: pad + inner / 2, y: size - 6, 'font-size': 11, 'text-anchor': 'middle', fill: '#495057' });
  xl.textContent = xLabel;
  const yl = svgEl('text', { x: 12, y: pad + inner / 2, 'font-size': 11, 'text-anchor': 'middle', fill: '#495057',
    transform: `rotate(-90 12 ${pad + inner / 2})` });
  yl.textContent = yLabel;
  svg.append(head, xl, yl);
  curves.forEach((c, i) => {
    if (c.points.length === 0) return;
    const d = c.points.map(([px, py], k) => `${k === 0 ? 'M' : 'L'}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
    svg.append(svgEl('path', { d, fill: 'none', stroke: c.color, 'stroke-width': 2.5,
      ...(c.dash ? { 'stroke-dasharray': '6 3' } : {}), 'data-curve': c.label }));
    if (dots) {
      for (const [px, py] of c.points) svg.append(svgEl('circle', { cx: x(px), cy: y(py), r: 4, fill: c.color }));
    }
    const ly = pad + 14 + i * 18;
    svg.append(svgEl('line', { x1: size + 4, y1: ly - 4, x2: size + 24, y2: ly - 4, stroke: c.color, 'stroke-width': 3 }));
    const lt = svgEl('text', { x: size + 28, y: ly, 'font-size': 11, fill: '#212529' });
    lt.textContent = c.label;
    svg.append(lt);
  });
  return svg;
}

// The drift map's colour for a PSI: white at 0 through amber at 0.2 (the common alert level)
// to dark red at 0.5 and above.
export function psiColor(psi: number): string {
  const stops: [number, [number, number, number]][] = [
    [0, [255, 255, 255]], [0.1, [255, 236, 153]], [0.2, [255, 169, 77]], [0.5, [201, 42, 42]],
  ];
  const v = Math.max(0, Math.min(0.5, psi));
  for (let i = 1; i < stops.length; i++) {
    const [p1, c1] = stops[i];
    const [p0, c0] = stops[i - 1];
    if (v <= p1) {
      const t = (v - p0) / (p1 - p0);
      const c = c0.map((a, k) => Math.round(a + (c1[k] - a) * t));
      return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
    }
  }
  return 'rgb(201, 42, 42)';
}

// The legend of psiColor: a bar of swatches from 0 to 0.5+.
export function psiLegend(): SVGSVGElement {
  const svg = svgEl('svg', { id: 'drift-legend', width: 360, height: 40, role: 'img' }) as SVGSVGElement;
  const steps = 50;
  for (let i = 0; i < steps; i++) {
    svg.append(svgEl('rect', { x: 10 + i * 6, y: 4, width: 6, height: 14, fill: psiColor((i / steps) * 0.5) }));
  }
  svg.append(svgEl('rect', { x: 10, y: 4, width: steps * 6, height: 14, fill: 'none', stroke: '#adb5bd' }));
  for (const t of [0, 0.1, 0.2, 0.3, 0.4, 0.5]) {
    const label = svgEl('text', { x: 10 + (t / 0.5) * steps * 6, y: 32, 'font-size': 10, 'text-anchor': 'middle', fill: '#495057' });
    label.textContent = t === 0.5 ? '≥ 0.5' : String(t);
    svg.append(label);
  }
  return svg;
}
