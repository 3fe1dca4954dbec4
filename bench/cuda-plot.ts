/** A small SVG plot of a kernel bench: speedup over cuBLAS FP16 against M, one panel per shape. */
interface PlotRow { K: number; N: number; M: number; variant: string; vs_fp16: number }

/** One colour per kernel family; variants of a family share it and differ by dash pattern. */
const STYLES: Record<string, { color: string; dash?: string }> = {
  'w4a8-is': { color: '#d62728' }, 'w4a8-is-overlap': { color: '#d62728', dash: '6 3' }, 'w4a8-is-shift': { color: '#d62728', dash: '2 2' },
  'w4a8-is-f16': { color: '#d62728', dash: '8 2 2 2' }, 'w4a8-fs': { color: '#1f77b4' }, 'w8a8-is': { color: '#2ca02c' },
  'w8a8-fs': { color: '#2ca02c', dash: '6 3' }, 'w4a16': { color: '#9467bd' }, 'int8-cublas': { color: '#000000', dash: '2 2' },
  'fp16-cublas': { color: '#7f7f7f' },
};
const dashOf = (v: string) => (STYLES[v]!.dash ? ` stroke-dasharray="${STYLES[v]!.dash}"` : '');

export function renderBenchSvg(report: { gpu: string; date: string; rows: PlotRow[] }): string {
  const shapes = [...new Set(report.rows.map((r) => `${r.K}x${r.N}`))];
  const variants = Object.keys(STYLES).filter((v) => report.rows.some((r) => r.variant === v));
  const W = 360, H = 260, pad = 40;
  const parts: string[] = [];
  shapes.forEach((shape, si) => {
    const rows = report.rows.filter((r) => `${r.K}x${r.N}` === shape);
    const ms = [...new Set(rows.map((r) => r.M))].sort((a, b) => a - b);
    const ymax = Math.max(1.5, ...rows.map((r) => r.vs_fp16)) * 1.1;
    const x = (m: number): number => pad + ((Math.log2(m) - Math.log2(ms[0]!)) / Math.max(1, Math.log2(ms[ms.length - 1]!) - Math.log2(ms[0]!))) * (W - 2 * pad);
    const y = (v: number): number => H - pad - (v / ymax) * (H - 2 * pad);
    const ox = si * W;
    parts.push(`<g transform="translate(${ox},0)"><text x="${W / 2}" y="16" text-anchor="middle" font-size="12">K=${shape.split('x')[0]}, N=${shape.split('x')[1]}</text>`);
    parts.push(`<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#000"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#000"/>`);
    for (let v = 0; v <= ymax; v += ymax > 4 ? 1 : 0.5) parts.push(`<text x="${pad - 4}" y="${y(v) + 3}" text-anchor="end" font-size="9">${v}</text><line x1="${pad}" x2="${W - pad}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
    for (const m of ms) parts.push(`<text x="${x(m)}" y="${H - pad + 12}" text-anchor="middle" font-size="8">${m}</text>`);
    for (const v of variants) {
      const pts = rows.filter((r) => r.variant === v).sort((a, b) => a.M - b.M);
      if (!pts.length) continue;
      parts.push(`<polyline fill="none" stroke="${STYLES[v]!.color}"${dashOf(v)} stroke-width="1.5" points="${pts.map((p) => `${x(p.M).toFixed(1)},${y(p.vs_fp16).toFixed(1)}`).join(' ')}"/>`);
    }
    parts.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle" font-size="10">M (tokens)</text>`);
    parts.push(`<text transform="translate(11,${H / 2}) rotate(-90)" text-anchor="middle" font-size="10">speedup over cuBLAS FP16 (×)</text></g>`);
  });
  // the legend: the variants present, in rows that fit the width
  const perRow = Math.max(1, Math.floor((W * shapes.length - 20) / 130));
  const legend = variants.map((v, i) => {
    const lx = 10 + (i % perRow) * 130, ly = H + 8 + Math.floor(i / perRow) * 14;
    return `<line x1="${lx}" x2="${lx + 20}" y1="${ly}" y2="${ly}" stroke="${STYLES[v]!.color}"${dashOf(v)} stroke-width="2"/><text x="${lx + 26}" y="${ly + 3}" font-size="10">${v}</text>`;
  }).join('');
  const legendHeight = 14 * Math.ceil(variants.length / perRow);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W * shapes.length}" height="${H + legendHeight + 26}" font-family="sans-serif"><text x="10" y="${H + legendHeight + 18}" font-size="10">${report.gpu}, ${report.date.slice(0, 10)}</text>${legend}${parts.join('')}</svg>`;
}
