/**
 * A tiny dependency-free SVG chart writer: grouped bar charts and line charts (linear or log10
 * y axis), with title, axis labels, tick labels, a legend and optional horizontal reference
 * lines (e.g. the int32 limit). Output is a standalone, well-formed SVG document string.
 *
 * Non-finite values (NaN, ±Infinity, or ≤ 0 on a log axis) are skipped, never drawn.
 */

/** One named series of values, one value per category (bar chart) or per x (line chart). */
export interface Series {
  readonly label: string;
  readonly values: readonly number[];
}

/** A horizontal line across the plot at y = value (in the chart's y units). */
export interface ReferenceLine {
  readonly label: string;
  readonly value: number;
}

export type AxisScale = 'linear' | 'log10';

interface ChartCommon {
  readonly title: string;
  /** a smaller second line under the title (e.g. the data source). */
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly referenceLines?: readonly ReferenceLine[];
}

export interface BarChart extends ChartCommon {
  /** one label per group of bars. */
  readonly categories: readonly string[];
}

export interface LineChart extends ChartCommon {
  /** x positions (linear axis), one per value of each series. */
  readonly x: readonly number[];
  /** tick labels under the x positions (default: the numbers). */
  readonly xTickLabels?: readonly string[];
  readonly yScale: AxisScale;
}

const WIDTH = 900;
const HEIGHT = 480;
const MARGIN = { left: 80, right: 200, top: 60, bottom: 90 };
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const REF_COLOR = '#d62728';

/** Escapes text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** Number with up to 3 significant digits, exponent form for very small/large magnitudes. */
function tickText(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a < 1e-3 || a >= 1e5 ? v.toExponential(0) : String(Number(v.toPrecision(3)));
}

/** Full-precision-ish value for tooltips. */
function valueText(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

/** A y mapping from data units to pixels, with tick positions. */
interface YAxis {
  toPx(v: number): number;
  ticks: { value: number; text: string }[];
  valid(v: number): boolean;
}

function yAxis(values: number[], scale: AxisScale, includeZero: boolean): YAxis {
  const plotTop = MARGIN.top;
  const plotBottom = HEIGHT - MARGIN.bottom;
  if (scale === 'log10') {
    const logs = values.filter((v) => Number.isFinite(v) && v > 0).map(Math.log10);
    let lo = logs.length ? Math.floor(Math.min(...logs)) : 0;
    let hi = logs.length ? Math.ceil(Math.max(...logs)) : 1;
    if (hi === lo) hi = lo + 1;
    const toPx = (v: number) => plotBottom - ((Math.log10(v) - lo) / (hi - lo)) * (plotBottom - plotTop);
    const step = Math.max(1, Math.ceil((hi - lo) / 8));
    const ticks = [];
    for (let e = lo; e <= hi; e += step) ticks.push({ value: 10 ** e, text: `1e${e}` });
    return { toPx, ticks, valid: (v) => Number.isFinite(v) && v > 0 };
  }
  const finite = values.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (includeZero) lo = Math.min(lo, 0);
  if (hi === lo) hi = lo + 1;
  const step = niceStep((hi - lo) / 6);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const toPx = (v: number) => plotBottom - ((v - lo) / (hi - lo)) * (plotBottom - plotTop);
  const ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push({ value: v, text: tickText(Number(v.toPrecision(12))) });
  return { toPx, ticks, valid: Number.isFinite };
}

/** 1, 2 or 5 times a power of ten, at least raw. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function frame(c: ChartCommon, y: YAxis, body: string[]): string {
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const bottom = HEIGHT - MARGIN.bottom;
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16">${escapeXml(c.title)}</text>`,
  ];
  if (c.subtitle) out.push(`<text x="${WIDTH / 2}" y="42" text-anchor="middle" font-size="11" fill="#555">${escapeXml(c.subtitle)}</text>`);
  for (const t of y.ticks) {
    const py = fmt(y.toPx(t.value));
    out.push(`<line x1="${left}" y1="${py}" x2="${right}" y2="${py}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${escapeXml(t.text)}</text>`);
  }
  out.push(...body);
  for (const r of c.referenceLines ?? []) {
    if (!y.valid(r.value)) continue;
    const py = fmt(y.toPx(r.value));
    out.push(`<line x1="${left}" y1="${py}" x2="${right}" y2="${py}" stroke="${REF_COLOR}" stroke-width="2" stroke-dasharray="6 4"/>`);
  }
  out.push(`<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="black"/>`);
  out.push(`<line x1="${left}" y1="${MARGIN.top}" x2="${left}" y2="${bottom}" stroke="black"/>`);
  out.push(`<text x="${(left + right) / 2}" y="${HEIGHT - 12}" text-anchor="middle">${escapeXml(c.xLabel)}</text>`);
  out.push(`<text x="18" y="${(MARGIN.top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(MARGIN.top + bottom) / 2})">${escapeXml(c.yLabel)}</text>`);
  out.push(...legend(c));
  out.push('</svg>', '');
  return out.join('\n');
}

function legend(c: ChartCommon): string[] {
  const x = WIDTH - MARGIN.right + 15;
  const out: string[] = [];
  let y = MARGIN.top + 10;
  c.series.forEach((s, i) => {
    out.push(`<rect x="${x}" y="${y - 8}" width="14" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${x + 20}" y="${y}">${escapeXml(s.label)}</text>`);
    y += 18;
  });
  for (const r of c.referenceLines ?? []) {
    out.push(`<line x1="${x}" y1="${y - 3}" x2="${x + 14}" y2="${y - 3}" stroke="${REF_COLOR}" stroke-width="2" stroke-dasharray="4 2"/>`);
    out.push(`<text x="${x + 20}" y="${y}">${escapeXml(r.label)}</text>`);
    y += 18;
  }
  return out;
}

/** Grouped bars: one group per category, one bar per series; linear y axis including 0. */
export function barChartSvg(c: BarChart): string {
  const all = [...c.series.flatMap((s) => s.values), ...(c.referenceLines ?? []).map((r) => r.value)];
  const y = yAxis(all, 'linear', true);
  const left = MARGIN.left;
  const plotWidth = WIDTH - MARGIN.right - left;
  const groupWidth = plotWidth / Math.max(1, c.categories.length);
  const barWidth = (groupWidth * 0.8) / Math.max(1, c.series.length);
  const zero = y.toPx(0);
  const body: string[] = [];
  const labelEvery = Math.max(1, Math.ceil(c.categories.length / 40));
  c.categories.forEach((cat, gi) => {
    const gx = left + gi * groupWidth + groupWidth * 0.1;
    c.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === undefined || !y.valid(v)) return;
      const py = y.toPx(v);
      const top = Math.min(py, zero);
      body.push(`<rect x="${fmt(gx + si * barWidth)}" y="${fmt(top)}" width="${fmt(barWidth)}" height="${fmt(Math.abs(zero - py))}" fill="${COLORS[si % COLORS.length]}"><title>${escapeXml(`${cat} ${s.label}: ${valueText(v)}`)}</title></rect>`);
    });
    if (gi % labelEvery === 0) {
      const cx = fmt(left + (gi + 0.5) * groupWidth);
      const cy = HEIGHT - MARGIN.bottom + 10;
      body.push(`<text x="${cx}" y="${cy}" text-anchor="end" font-size="9" transform="rotate(-45 ${cx} ${cy})">${escapeXml(cat)}</text>`);
    }
  });
  return frame(c, y, body);
}

/** Lines with point markers over a linear x axis; y linear or log10. */
export function lineChartSvg(c: LineChart): string {
  const all = [...c.series.flatMap((s) => s.values), ...(c.referenceLines ?? []).map((r) => r.value)];
  const y = yAxis(all, c.yScale, false);
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const xs = c.x.filter(Number.isFinite);
  const xlo = Math.min(...xs);
  const xhi = Math.max(...xs) === xlo ? xlo + 1 : Math.max(...xs);
  const pad = 20;
  const toX = (v: number) => left + pad + ((v - xlo) / (xhi - xlo)) * (right - left - 2 * pad);
  const body: string[] = [];
  c.x.forEach((xv, i) => {
    const px = fmt(toX(xv));
    body.push(`<text x="${px}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">${escapeXml(c.xTickLabels?.[i] ?? tickText(xv))}</text>`);
  });
  c.series.forEach((s, si) => {
    const color = COLORS[si % COLORS.length];
    const pts = c.x.flatMap((xv, i) => {
      const v = s.values[i];
      return v !== undefined && y.valid(v) ? [[toX(xv), y.toPx(v), v] as const] : [];
    });
    if (pts.length > 1) {
      body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([px, py]) => `${fmt(px)},${fmt(py)}`).join(' ')}"/>`);
    }
    for (const [px, py, v] of pts) {
      body.push(`<circle cx="${fmt(px)}" cy="${fmt(py)}" r="3.5" fill="${color}"><title>${escapeXml(`${s.label}: ${valueText(v)}`)}</title></circle>`);
    }
  });
  return frame(c, y, body);
}
