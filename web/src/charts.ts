// Charts drawn as SVG: grouped bars (class balance per split) and line charts (a metric per epoch).

import { num } from "./ui";

const SVG = "http://www.w3.org/2000/svg";

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {},
  ...children: (SVGElement | string)[]): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(typeof child === "string" ? document.createTextNode(child) : child);
  return node;
}

export interface Bar {
  name: string;
  value: number;
  color: string;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

/** Grouped vertical bars (one group per split, one bar per class) of shares in percent, with a y axis. */
export function groupedBars(groups: BarGroup[], title: string, width = 720, height = 260): SVGSVGElement {
  const left = 44, bottom = 28, top = 12, inner = height - bottom - top;
  const most = Math.max(1, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "chart bars" },
    s("title", {}, title));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const y = top + inner * (1 - tick);
    svg.append(s("line", { x1: left, x2: width, y1: y, y2: y, class: "grid" }),
      s("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, `${num(most * tick, 2)}%`));
  }
  const slot = (width - left) / Math.max(1, groups.length);
  groups.forEach((group, g) => {
    const barWidth = Math.min(28, (slot - 16) / Math.max(1, group.bars.length));
    const start = left + g * slot + (slot - barWidth * group.bars.length) / 2;
    group.bars.forEach((bar, i) => {
      const barHeight = (inner * bar.value) / most;
      svg.append(s("rect", {
        x: start + i * barWidth, y: top + inner - barHeight, width: Math.max(1, barWidth - 2), height: barHeight,
        fill: bar.color, "data-class": bar.name, "data-split": group.label,
      }, s("title", {}, `${group.label} · ${bar.name}: ${num(bar.value, 3)}%`)));
    });
    svg.append(s("text", { x: left + g * slot + slot / 2, y: height - 8, "text-anchor": "middle", class: "label" },
      group.label));
  });
  return svg;
}

export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
}

/** A line chart of one or more series over steps (epochs, or times), with min/max on the y axis and first/last step. */
export function lineChart(series: Series[], title: string, width = 360, height = 200,
  tick: (x: number, first: boolean) => string = (x, first) => (first ? `epoch ${x}` : `${x}`)): SVGSVGElement {
  const left = 52, right = 10, top = 10, bottom = 26;
  const all = series.flatMap((one) => one.points);
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const px = (x: number): number => left + ((x - x0) / Math.max(1e-12, x1 - x0 || 1)) * (width - left - right);
  const py = (y: number): number => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "chart lines" },
    s("title", {}, title),
    s("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "axis" }),
    s("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "axis" }),
    s("text", { x: left - 6, y: top + 8, "text-anchor": "end", class: "tick" }, num(y1, 3)),
    s("text", { x: left - 6, y: height - bottom, "text-anchor": "end", class: "tick" }, num(y0, 3)),
    s("text", { x: left, y: height - 8, class: "tick" }, tick(x0, true)),
    s("text", { x: width - right, y: height - 8, "text-anchor": "end", class: "tick" }, tick(x1, false)));
  for (const one of series) {
    const d = one.points.map((p, i) => `${i ? "L" : "M"}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ");
    svg.append(s("path", { d, fill: "none", stroke: one.color, "stroke-width": 2, "data-series": one.name },
      s("title", {}, one.name)));
    if (one.points.length === 1) {
      svg.append(s("circle", { cx: px(one.points[0].x), cy: py(one.points[0].y), r: 3, fill: one.color }));
    }
  }
  return svg;
}
