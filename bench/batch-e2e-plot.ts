/** The SVG of the batched end-to-end bench (cuda-batch-e2e.ts): latency by batch size, one bar per system, like the paper's Figure 1. */

export interface LatencyRow {
  system: string;
  batch: number;
  'latency ms': number;
  'prefill ms': number;
  'decode tok/s': number;
  'floor tok/s (batch 1)': number;
}

const COLORS = ['#7f7f7f', '#2ca02c', '#9467bd', '#1f77b4', '#d62728', '#000000', '#ff7f0e'];

export function renderLatencySvg(report: { gpu: string; date: string; shape?: string; layers: number; promptTokens: number; outTokens: number; rows: readonly (LatencyRow & { 'vs intscale fp16': string })[] }): string {
  const systems = [...new Set(report.rows.map((r) => r.system))];
  const batches = [...new Set(report.rows.map((r) => r.batch))].sort((a, b) => a - b);
  const W = 160 * batches.length + 80, H = 320, pad = 50;
  const ymax = Math.max(...report.rows.map((r) => r['latency ms'])) * 1.15;
  const y = (v: number): number => H - pad - (v / ymax) * (H - 2 * pad);
  const groupW = (W - 2 * pad) / batches.length, barW = (groupW * 0.8) / systems.length;
  const parts: string[] = [];
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="12">${report.gpu}, ${report.shape ?? 'llama2-7b'} shape (${report.layers} layers, RANDOM weights), ${report.promptTokens} in / ${report.outTokens} out, ${report.date}</text>`);
  parts.push(`<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#000"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#000"/>`);
  const step = 10 ** Math.floor(Math.log10(ymax / 2));
  for (let v = 0; v <= ymax; v += step * (ymax / step > 8 ? 2 : 1)) parts.push(`<text x="${pad - 4}" y="${y(v) + 3}" text-anchor="end" font-size="9">${v}</text><line x1="${pad}" x2="${W - pad}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
  batches.forEach((b, bi) => {
    const gx = pad + bi * groupW + groupW * 0.1;
    parts.push(`<text x="${gx + groupW * 0.4}" y="${H - pad + 14}" text-anchor="middle" font-size="10">batch ${b}</text>`);
    systems.forEach((s, si) => {
      const r = report.rows.find((row) => row.system === s && row.batch === b);
      if (!r) return;
      const x = gx + si * barW;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y(r['latency ms']).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(H - pad - y(r['latency ms'])).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"/>`);
      if (r['vs intscale fp16'] !== '-') parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(y(r['latency ms']) - 3).toFixed(1)}" text-anchor="middle" font-size="7">${r['vs intscale fp16']}</text>`);
    });
  });
  parts.push(`<text transform="translate(12,${H / 2}) rotate(-90)" text-anchor="middle" font-size="10">end-to-end latency (ms)</text>`);
  systems.forEach((s, si) => {
    const lx = pad + (si % 4) * 170, ly = H - 14 + Math.floor(si / 4) * 12;
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="8" fill="${COLORS[si % COLORS.length]}"/><text x="${lx + 14}" y="${ly}" font-size="9">${s}</text>`);
  });
  const height = H + 12 * Math.floor((systems.length - 1) / 4);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="sans-serif">${parts.join('')}</svg>\n`;
}
