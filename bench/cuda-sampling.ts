/**
 * What picking the next tokens costs on the device: sample_rows (temperature + top-p, kernels/sampling.cu) and
 * argmax_rows (greedy) over m rows of RANDOM peaked logits (speed only: normal σ 3 with a few tokens up to +14, an
 * LLM's shape; and flat ones, uniform in ±4, where the nucleus is most of the vocabulary), each launch timed alone
 * with CUDA events (median of 2 × --samples after 3 warm-up), sample_rows on the blocks a row it takes by default
 * (sampleCluster) and on one block a row, against what the host path costs for the same rows:
 * the logits copied back and pickToken on each (wall time, median of --host-reps). Every device token is checked
 * against pickToken first.
 *
 *   node dist/bench/cuda-sampling.js [--rows 1,8,32,64] [--vocab 32000] [--samples 20] [--host-reps 5] [--json]
 */
import { CudaContext } from '../src/backends/cuda/context.js';
import { argmaxRowsCuda } from '../src/backends/cuda/engine-ops.js';
import { pickRows, sampleCluster, sampleRowsCuda, sampleScratchBytes } from '../src/backends/cuda/sample-rows.js';
import { pickToken, seededRandom, type TokenPick } from '../src/model/sampling.js';
import { benchArgs, positiveInt, positiveInts } from './args.js';
import { randomLogits } from './random-logits.js';
import { CudaTimer, needsGpu } from './cuda-timing.js';
import { benchOutput, machineLine, median } from './stats.js';
import { cpuPool } from '../src/backends/cpu/pool/index.js';

const { values } = benchArgs(import.meta.url, {
  options: {
    rows: { type: 'string', default: '1,8,32,64' },
    vocab: { type: 'string', default: '32000' },
    samples: { type: 'string', default: '20' },
    'host-reps': { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const rowCounts = positiveInts('rows', values.rows!);
const n = positiveInt('vocab', values.vocab!);
const samples = positiveInt('samples', values.samples!);
const hostReps = positiveInt('host-reps', values['host-reps']!);
const out = benchOutput(values.json === true);
const ctx = needsGpu('the device sampling bench', () => new CudaContext(0));
out.say(`# ${ctx.info.name}, driver ${ctx.info.driverVersion}; ${machineLine(cpuPool().threads)}`);
out.say(`# next tokens of m rows of ${n} RANDOM logits (speed only); device: µs a launch (CUDA events, median of ${2 * samples}); host: logits copied back + pickToken a row (ms wall, median of ${hostReps}); device tokens checked against pickToken`);

const random = seededRandom(20261207);
const settings = [{ temperature: 0.7, topP: 0.9 }, { temperature: 1, topP: 1 }];
const timer = new CudaTimer(ctx);
const table = [];
for (const m of rowCounts) {
  const cluster = sampleCluster(m, ctx.info.multiprocessors, ctx.info.computeCapability[0]);
  for (const shape of ['peaked', 'flat'] as const) {
    const host = randomLogits(shape, m * n, random);
    const logits = ctx.upload(host), tokens = ctx.alloc(m * 4), scratch = ctx.alloc(m * sampleScratchBytes(n));
    ctx.landUploads();
    const argmaxUs = timer.time(() => argmaxRowsCuda(ctx, logits, tokens, m, n), samples).us;
    for (const s of settings) {
      const picks = Array.from({ length: m }, (): TokenPick => ({ ...s, draw: random() }));
      const pickBuf = ctx.upload(pickRows(picks));
      ctx.landUploads();
      for (const c of [cluster, 1] as const) {
        sampleRowsCuda(ctx, logits, pickBuf, scratch, tokens, m, n, c);
        const got = ctx.copyToHost(new Int32Array(m), tokens);
        picks.forEach((p, r) => {
          const want = pickToken(host.subarray(r * n, (r + 1) * n), p);
          if (got[r] !== want) throw new Error(`sample_rows on ${c} blocks a row picked ${got[r]} on row ${r}, pickToken ${want} (${shape}, T ${p.temperature}, top-p ${p.topP})`);
        });
      }
      const sampleUs = timer.time(() => sampleRowsCuda(ctx, logits, pickBuf, scratch, tokens, m, n, cluster), samples).us;
      const oneBlockUs = timer.time(() => sampleRowsCuda(ctx, logits, pickBuf, scratch, tokens, m, n, 1), samples).us;
      const hostMs = median(Array.from({ length: hostReps }, () => {
        const t0 = performance.now();
        const back = ctx.copyToHost(new Float32Array(m * n), logits);
        for (let r = 0; r < m; r++) pickToken(back.subarray(r * n, (r + 1) * n), picks[r]!);
        return performance.now() - t0;
      }));
      table.push({ rows: m, logits: shape, T: s.temperature, 'top-p': s.topP, 'argmax_rows µs': argmaxUs.toFixed(1), 'blocks a row': cluster, 'sample_rows µs': sampleUs.toFixed(1), 'on 1 block a row µs': oneBlockUs.toFixed(1), 'host: copy + pickToken ms': hostMs.toFixed(2) });
      pickBuf.free();
    }
    for (const b of [logits, tokens, scratch]) b.free();
  }
}
out.table(table);
timer.destroy();
ctx.release();
