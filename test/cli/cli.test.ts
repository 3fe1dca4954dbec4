/** The CLI end to end: commands run, and bad input prints one clear line and exits 2. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixturePath, repoPath } from '../helpers/paths.js';
import { tempDir } from '../io/temp-dir.js';
import { mixtralFromDense } from '../helpers/mixtral-dir.js';
import { freshSeed } from '../helpers/random.js';
import { tryCudaContext } from '../../src/backends/cuda/index.js';

const CLI = repoPath('dist/src/cli/main.js');

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempCopy(dir: string): string {
  const out = tempDir();
  fs.cpSync(dir, out, { recursive: true });
  return out;
}

test('generate streams a greedy continuation and reports tokens/s', () => {
  const r = run('generate', '-m', fixturePath('llama'), '-p', 'The game', '-n', '5');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith('The game'));
  assert.match(r.stderr, /prefill: \d+ tokens in [\d.]+ s \([\d.]+ tok\/s\); decode: 4 tokens/);
});

test('generate applies the chat template when the model has one (and --no-chat turns it off)', () => {
  const chat = run('generate', '-m', fixturePath('qwen2'), '-p', 'Hello', '-n', '3', '--no-stats');
  assert.equal(chat.code, 0, chat.stderr);
  assert.ok(!chat.stdout.startsWith('Hello'), 'a chat reply does not echo the prompt');
  assert.equal(chat.stderr, '');
  const plain = run('generate', '-m', fixturePath('qwen2'), '-p', 'Hello', '-n', '3', '--no-chat', '--no-stats');
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok(plain.stdout.startsWith('Hello'));
});

test('quantize then eval the quantized checkpoint', () => {
  const out = path.join(tempDir(), 'q');
  const q = run('quantize', '-m', fixturePath('qwen2'), '-o', out, '--group', '32', '--override', 'down_proj=w8a8,float');
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stdout, /quantized 15 linear layers/, '14 decoder linears and the lm_head (W8A8 by default)');
  assert.match(q.stdout, /W4A8 g32 IS α≤2\^10 \(safe\) → α=2\^10/);
  assert.match(q.stdout, /│ W8A8 g32 IS α≤2\^16 \(safe\) → α=2\^1[0-6] +│ +1 │/, 'the lm_head: W8A8, the base\'s group, α ≤ 2^16');
  const text = path.join(out, 'text.txt');
  fs.writeFileSync(text, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(8));
  const e = run('eval', '-m', out, '-t', text, '--seq-len', '32', '--json');
  assert.equal(e.code, 0, e.stderr);
  const row = JSON.parse(e.stdout.trim()) as { perplexity: number; windows: number };
  assert.ok(Number.isFinite(row.perplexity) && row.perplexity > 1);
  assert.ok(row.windows >= 1);
});

test('quantize --lm-head float keeps the lm_head (and the embedding tied to it) in float; by default both are 8-bit; --embedding float; contradictions refused by name', () => {
  const out = path.join(tempDir(), 'q');
  const q = run('quantize', '-m', fixturePath('qwen2'), '-o', out, '--group', '32', '--lm-head', 'float', '--json');
  assert.equal(q.code, 0, q.stderr);
  assert.equal((JSON.parse(q.stdout) as { linearLayers: number }).linearLayers, 14);
  const file = fs.readFileSync(path.join(out, 'model.safetensors'));
  const names = Object.keys(JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString()) as object);
  assert.ok(!names.some((n) => n.startsWith('lm_head.q')), 'no quantized lm_head tensors');
  assert.ok(names.includes('model.embed_tokens.weight'), 'the embedding stays float: the float lm_head is tied to it');
  const dflt = path.join(tempDir(), 'q-default');
  assert.equal(run('quantize', '-m', fixturePath('qwen2'), '-o', dflt, '--group', '32').code, 0);
  const dfile = fs.readFileSync(path.join(dflt, 'model.safetensors'));
  const dnames = Object.keys(JSON.parse(dfile.subarray(8, 8 + Number(dfile.readBigUInt64LE(0))).toString()) as object);
  assert.ok(dnames.includes('model.embed_tokens.qweight') && dnames.includes('lm_head.qweight'), 'by default the lm_head in W8A8 and the embedding in 8 bits a row');
  const flt = path.join(tempDir(), 'q-float-embedding');
  assert.equal(run('quantize', '-m', fixturePath('qwen2'), '-o', flt, '--group', '32', '--embedding', 'float').code, 0);
  const ffile = fs.readFileSync(path.join(flt, 'model.safetensors'));
  assert.ok(Object.keys(JSON.parse(ffile.subarray(8, 8 + Number(ffile.readBigUInt64LE(0))).toString()) as object).includes('model.embed_tokens.weight'), '--embedding float');
  const both = run('quantize', '-m', fixturePath('qwen2'), '-o', path.join(tempDir(), 'q2'), '--lm-head', 'float', '--override', 'lm_head=w8a8');
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--lm-head float and --override lm_head=… contradict each other/);
  const bad = run('quantize', '-m', fixturePath('qwen2'), '-o', path.join(tempDir(), 'q3'), '--lm-head', 'int4');
  assert.equal(bad.code, 1, 'a usage error');
  assert.match(bad.stderr, /'--lm-head <kind>' argument 'int4' is invalid\. Allowed choices are w8a8, float/);
  const badTable = run('quantize', '-m', fixturePath('qwen2'), '-o', path.join(tempDir(), 'q4'), '--embedding', 'int4');
  assert.equal(badTable.code, 1, 'a usage error');
  assert.match(badTable.stderr, /'--embedding <kind>' argument 'int4' is invalid\. Allowed choices are int8, float/);
});

test('a mixtral directory: quantize (GPTQ, experts below --min-expert-tokens reported as RTN), then eval, generate and inspect the checkpoint on the CPU', () => {
  const dir = mixtralFromDense('mistral', { experts: 4, topK: 2, seed: freshSeed(), noise: 0.5, routerStd: 1 });
  const out = path.join(tempDir(), 'q');
  const text = path.join(tempDir(), 'text.txt');
  fs.writeFileSync(text, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(8));
  const q = run('quantize', '-m', dir, '-o', out, '--group', '32', '--method', 'gptq', '--calib', text, '--calib-windows', '2',
    '--calib-seq-len', '32', '--min-expert-tokens', '1000', '--json');
  assert.equal(q.code, 0, q.stderr);
  const result = JSON.parse(q.stdout.trim()) as { linearLayers: number; fallbacks: { name: string; reason: string }[]; notProvenOverflowFree: string[] };
  assert.equal(result.linearLayers, 2 * (4 + 4 * 3) + 1, 'the decoder linears and the lm_head');
  assert.equal(result.fallbacks.length, 2 * 4 * 3, 'every expert saw fewer than 1000 tokens');
  assert.match(result.fallbacks[0]!.reason, /^RTN: expert \d was routed \d+ calibration tokens, fewer than 1000$/);
  assert.deepEqual(result.notProvenOverflowFree, []);
  const e = run('eval', '-m', out, '-t', text, '--seq-len', '32', '--json', '--backend', 'cpu');
  assert.equal(e.code, 0, e.stderr);
  assert.ok(Number.isFinite((JSON.parse(e.stdout.trim()) as { perplexity: number }).perplexity));
  const g = run('generate', '-m', out, '-p', 'The game', '-n', '4', '--backend', 'cpu', '--no-stats');
  assert.equal(g.code, 0, g.stderr);
  assert.ok(g.stdout.startsWith('The game'));
  const i = run('inspect', '--overflow', '-m', out, '--calib', text, '--seq-len', '32', '--plots', path.join(tempDir(), 'plots'), '--json');
  assert.equal(i.code, 0, i.stderr);
  const audit = JSON.parse(i.stdout.trim()) as { proven: number; layers: { layer: string }[] };
  assert.equal(audit.proven, 33, 'every expert linear and the lm_head proven overflow-free');
  assert.ok(audit.layers.some((l) => l.layer === '1.block_sparse_moe.experts.3.w2'));
});

test('generate --backend cuda: on a GPU the CPU backend\'s greedy text, without one a clear line naming why', () => {
  const out = path.join(tempDir(), 'q');
  const q = run('quantize', '-o', out);
  assert.equal(q.code, 0, q.stderr);
  const gpu = run('generate', '-m', out, '-p', 'The game', '-n', '12', '--backend', 'cuda');
  const cuda = tryCudaContext();
  if ('reason' in cuda) {
    assert.equal(gpu.code, 2, gpu.stderr);
    assert.match(gpu.stderr, /^intscale: --backend cuda: \S.+\n/); // the reason, then what was tried
    return;
  }
  cuda.ctx.release();
  assert.equal(gpu.code, 0, gpu.stderr);
  const cpu = run('generate', '-m', out, '-p', 'The game', '-n', '12');
  assert.equal(gpu.stdout, cpu.stdout);
  assert.match(gpu.stderr, /linear layers on the GPU: 28 W4A8, 1 F32; on the CPU: none\n/);
  // groups of 32 on the fixture's layers (K = 64: q/k/v/o/gate/up; K = 128: down): no CUDA kernel takes them, they run on the CPU and the summary says why
  const smallDir = path.join(tempDir(), 'q');
  assert.equal(run('quantize', '-m', fixturePath('llama'), '-o', smallDir, '--group', '32').code, 0);
  const small = run('generate', '-m', smallDir, '-p', 'The game', '-n', '3', '--backend', 'cuda');
  assert.equal(small.code, 0, small.stderr);
  assert.match(small.stderr, /on the GPU: 1 F32; on the CPU: 12 \(CUDA W4A8 kernels need K % 128 == 0 \(K = 64\)\); 2 \(CUDA W4A8 kernels need a group size/);
});

for (const method of ['gptq', 'awq']) {
  test(`quantize --method ${method} --backend cuda: without a GPU a clear line naming why and no output directory made; with one, calibrated on it`, () => {
    const text = path.join(tempDir(), 'calib.txt');
    fs.writeFileSync(text, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(40));
    const out = path.join(tempDir(), 'q');
    const q = run('quantize', '-m', fixturePath('llama'), '-o', out, '--group', '32', '--method', method, '--calib', text, '--calib-windows', '2', '--calib-seq-len', '16', '--backend', 'cuda');
    const cuda = tryCudaContext();
    if ('reason' in cuda) {
      assert.equal(q.code, 2, q.stderr);
      assert.match(q.stderr, /^intscale: --backend cuda: \S.+\n/);
      assert.ok(!fs.existsSync(out), 'no output directory before the GPU is known to be there');
      return;
    }
    cuda.ctx.release();
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /; on cuda \(/);
    assert.match(q.stdout, /quantized 15 linear layers/);
  });
}

test('bad input: one clear line on stderr, exit code 2', () => {
  const missing = run('eval', '-m', '/nonexistent/model', '-t', 'x.txt');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /x\.txt: text file not found|\/nonexistent\/model: model directory not found/);

  const noModel = run('generate', '-m', '/nonexistent/model', '-p', 'hi');
  assert.equal(noModel.code, 2);
  assert.equal(noModel.stderr.trim(), 'intscale: /nonexistent/model: model directory not found');

  const badAlpha = run('quantize', '-o', '/tmp/never', '--alpha', '1000');
  assert.notEqual(badAlpha.code, 0);
  assert.match(badAlpha.stderr, /α must be a power of two from 1 to 2\^30/);

  const badOverride = run('quantize', '-o', '/tmp/never', '--override', 'mlp=w8');
  assert.notEqual(badOverride.code, 0);
  assert.match(badOverride.stderr, /module one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, w1, w3, w2, lm_head/);
});

test('a truncated safetensors file and an unsupported architecture are named', () => {
  const truncated = tempCopy(fixturePath('mistral'));
  const file = path.join(truncated, 'model.safetensors');
  fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
  const t = run('generate', '-m', truncated, '-p', 'hi');
  assert.equal(t.code, 2);
  assert.match(t.stderr, /model\.safetensors/);
  assert.match(t.stderr, /past the end|truncated/);

  const mixtral = tempCopy(fixturePath('mistral'));
  const cfgPath = path.join(mixtral, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  fs.writeFileSync(cfgPath, JSON.stringify({ ...cfg, model_type: 'mixtral', architectures: ['MixtralForCausalLM'] }));
  const m = run('generate', '-m', mixtral, '-p', 'hi');
  assert.equal(m.code, 2);
  assert.match(m.stderr, /tensor "model\.layers\.0\.block_sparse_moe\.gate\.weight" not found/, 'a dense checkpoint under a mixtral config: the router is missing');
});

test('the GPU benches exit 2 with one clear message where there is no GPU', { skip: 'reason' in tryCudaContext() ? false : 'a GPU is present: the benches would run' }, () => {
  for (const [name, what] of [['kernels', 'intscale bench kernels'], ['cuda', 'the CUDA end-to-end bench'], ['cuda-step-ops', 'the CUDA step-ops bench'],
    ['cuda-moe-kernels', 'the grouped expert GEMM bench'], ['e2e', 'the batched end-to-end bench']]) {
    const r = run('bench', name!);
    assert.equal(r.code, 2, `bench ${name}: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(`${what} needs an NVIDIA GPU: `), `bench ${name}: ${r.stderr}`);
  }
});

test('file-system problems are one line naming the path, found before any work; exit codes as --help says', () => {
  const help = run('--help');
  assert.match(help.stdout, /Exit codes: 0 done; 1 bad arguments \(usage printed\); 2 bad input or a failed run/);

  const dir = tempDir();
  const asText = run('eval', '-t', dir);
  assert.equal(asText.code, 2);
  assert.equal(asText.stderr.trim(), `intscale: ${dir}: is a directory, expected a UTF-8 text file`);

  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const started = performance.now();
  const onFile = run('quantize', '-m', fixturePath('qwen2'), '-o', file, '--method', 'gptq', '--calib', file);
  assert.equal(onFile.code, 2);
  assert.equal(onFile.stderr.trim(), `intscale: ${file}: exists and is not a directory; choose a directory for the checkpoint`);
  assert.equal(onFile.stdout, '', 'refused before quantizing');
  assert.ok(performance.now() - started < 30_000);

  const nested = run('quantize', '-m', fixturePath('qwen2'), '-o', path.join(file, 'q'));
  assert.equal(nested.code, 2);
  assert.match(nested.stderr, /cannot create the output directory: .*a-file is a file/);

  if (fs.existsSync('/proc/self')) {
    const proc = run('quantize', '-m', fixturePath('qwen2'), '-o', '/proc/intscale-out');
    assert.equal(proc.code, 2);
    assert.match(proc.stderr, /^intscale: \/proc\/intscale-out: cannot (create|write into) the output directory \(/);
  }

  const seqLen = run('eval', '-t', file, '--seq-len', '1');
  assert.equal(seqLen.code, 1, 'an argument error exits 1');
  assert.match(seqLen.stderr, /option '--seq-len <n>' argument '1' is invalid\. expected an integer ≥ 2, got "1"/);
});

test('quantizing a model without tokenizer.json says the checkpoint will have none; config.json has one dtype', () => {
  const noTokenizer = tempCopy(fixturePath('mistral'));
  fs.rmSync(path.join(noTokenizer, 'tokenizer.json'));
  const out = path.join(tempDir(), 'q');
  const q = run('quantize', '-m', noTokenizer, '-o', out, '--group', '32');
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stderr, /warning: .* has no tokenizer\.json, so the checkpoint will have none: eval and generate need one/);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg['dtype'], 'float32');
  assert.equal(cfg['torch_dtype'], 'float32');
});

test('--version prints the package version; --threads sets the CPU pool size and is validated', () => {
  const pkg = JSON.parse(fs.readFileSync(repoPath('package.json'), 'utf8')) as { version: string };
  assert.equal(run('--version').stdout.trim(), pkg.version);
  const one = run('--threads', '1', 'generate', '-m', fixturePath('llama'), '-p', 'The game', '-n', '3', '--no-stats');
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, run('generate', '-m', fixturePath('llama'), '-p', 'The game', '-n', '3', '--no-stats').stdout);
  const zero = run('--threads', '0', 'generate', '-p', 'x');
  assert.equal(zero.code, 1);
  assert.match(zero.stderr, /option '--threads <n>' argument '0' is invalid\. expected a positive integer/);
});

const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
test('the published package holds what its commands need: the CLI, the benches, the demo text and model', { skip: npm.status === 0 ? false : 'npm is not on this machine' }, () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: repoPath('.'), encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const files = new Set((JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  for (const f of ['dist/src/cli/main.js', 'dist/bench/cpu-e2e.js', 'dist/bench/cuda-e2e.js', 'data/wikitext-2-test-excerpt.txt',
    'models/tiny-wikitext/model.safetensors', 'src/backends/cuda/kernels/attention.cu', 'bench/kernels/bench-util.cu']) {
    assert.ok(files.has(f), `${f} is in the package`);
  }
  assert.ok(![...files].some((f) => f.startsWith('dist/test/')), 'tests are not shipped');
});

test('--json on every command that prints figures; prompts from stdin and files; tables without an index column', () => {
  const viaStdin = spawnSync(process.execPath, [CLI, 'generate', '-m', fixturePath('llama'), '-p', '-', '-n', '4', '--json'], { input: 'The game\n', encoding: 'utf8' });
  assert.equal(viaStdin.status, 0, viaStdin.stderr);
  const g = JSON.parse(viaStdin.stdout) as { prompt: string; tokens: number[]; decodeTokens: number; stoppedBy: string };
  assert.equal(g.prompt, 'The game', 'the newline that ends the piped line is not part of the prompt');
  assert.equal(g.tokens.length, 4);
  const promptFile = path.join(tempDir(), 'prompt.txt');
  fs.writeFileSync(promptFile, 'The game');
  const viaFile = JSON.parse(run('generate', '-m', fixturePath('llama'), '--prompt-file', promptFile, '-n', '4', '--json').stdout) as { tokens: number[] };
  assert.deepEqual(viaFile.tokens, g.tokens);
  const neither = run('generate', '-m', fixturePath('llama'));
  assert.equal(neither.code, 2);
  assert.match(neither.stderr, /exactly one of -p TEXT, -p - \(read stdin\) or --prompt-file FILE/);

  const out = path.join(tempDir(), 'q');
  const q = run('quantize', '-m', fixturePath('qwen2'), '-o', out, '--group', '32', '--json');
  assert.equal(q.code, 0, q.stderr);
  const qj = JSON.parse(q.stdout) as { linearLayers: number; settings: { layers: number }[]; notProvenOverflowFree: string[] };
  assert.equal(qj.linearLayers, 15);
  assert.deepEqual(qj.notProvenOverflowFree, []);

  const inspect = run('inspect', '--overflow', '-m', out, '--plots', path.join(tempDir(), 'plots'), '--json', '--calib-windows', '1', '--seq-len', '32');
  assert.equal(inspect.code, 0, inspect.stderr);
  const ij = JSON.parse(inspect.stdout) as { layers: { proven: boolean }[]; proven: number; plots: string[] };
  assert.equal(ij.layers.length, 15);
  assert.ok(ij.layers.every((l) => l.proven === true));
  assert.equal(ij.plots.length, 2);

  const demo = run('demo', '--json', '--max-windows', '1', '--seq-len', '64', '-n', '4');
  assert.equal(demo.code, 0, demo.stderr);
  const dj = JSON.parse(demo.stdout) as { perplexity: { setting: string; perplexity: number }[]; proven: number; layers: number };
  assert.equal(dj.perplexity.length, 3);
  assert.equal(dj.proven, dj.layers);

  const table = run('quantize', '-m', fixturePath('qwen2'), '-o', path.join(tempDir(), 'q2'), '--group', '32');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /│ setting +│ layers │/);
  assert.doesNotMatch(table.stdout, /\(index\)|'/);
});

test('quantize still takes --calib-samples, the old name of --calib-windows', () => {
  const calib = path.join(tempDir(), 'calib.txt');
  fs.writeFileSync(calib, 'The game began development in 2010 , carrying over a large portion of the work . '.repeat(40));
  const r = run('quantize', '-m', fixturePath('qwen2'), '-o', path.join(tempDir(), 'q'), '--group', '32', '--method', 'gptq', '--calib', calib, '--calib-samples', '2', '--calib-seq-len', '16');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /GPTQ .* on 2×16 tokens of /);
});

test('a model too large for this machine is refused before a weight is read, with the numbers and the way out', () => {
  // a sparse file: a header declaring 2^37 f16 values (256 GB), no data on disk
  const dir = tempDir();
  const [vocab, hidden] = [1 << 19, 1 << 18];
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    model_type: 'llama', vocab_size: vocab, hidden_size: hidden, intermediate_size: 8, num_hidden_layers: 1,
    num_attention_heads: 1, tie_word_embeddings: true,
  }));
  const header = Buffer.from(JSON.stringify({ 'model.embed_tokens.weight': { dtype: 'F16', shape: [vocab, hidden], data_offsets: [0, 2 * vocab * hidden] } }));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  const file = path.join(dir, 'model.safetensors');
  fs.writeFileSync(file, Buffer.concat([prefix, header]));
  fs.truncateSync(file, 8 + header.length + 2 * vocab * hidden);
  fs.copyFileSync(path.join(fixturePath('llama'), 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const text = path.join(dir, 'text.txt');
  fs.writeFileSync(text, 'hello '.repeat(100));
  const r = run('eval', '-m', dir, '-t', text, '--seq-len', '16');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /loading needs about 549\.8 GB of memory \(549\.8 GB of weights, 0\.0 GB of KV cache.*\) but [\d.]+ GB is available; its 274\.9 GB of 16-bit float weights are held as float32 .* quantize it first .*\(or --no-memory-check to try anyway\)/);
});

test('serve: a port in use, a model without a tokenizer and a bad --port are one clear line each', async () => {
  const net = await import('node:net');
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  try {
    const port = String((blocker.address() as { port: number }).port);
    const busy = run('serve', '-m', fixturePath('llama'), '--port', port);
    assert.equal(busy.code, 2, busy.stderr);
    assert.match(busy.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use \\(choose another with --port\\)`));
  } finally {
    blocker.close();
  }
  const noTokenizer = tempCopy(fixturePath('llama'));
  fs.rmSync(path.join(noTokenizer, 'tokenizer.json'));
  const r = run('serve', '-m', noTokenizer, '--port', '0');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no tokenizer\.json, the server cannot read prompts/);
  const badPort = run('serve', '--port', 'eighty');
  assert.equal(badPort.code, 1);
  assert.match(badPort.stderr, /--port/);
});

test('generate -m model.gguf converts the file once (saying so) and continues as the original directory does', async () => {
  const { writeGgufFrom } = await import('../io/gguf-writer.js');
  const file = path.join(tempDir(), 'tiny.gguf');
  writeGgufFrom(repoPath('models/tiny-wikitext'), file, 'Q8_0');
  const env = { ...process.env, INTSCALE_CACHE: tempDir() };
  const gen = (m: string) => spawnSync(process.execPath, [CLI, 'generate', '-m', m, '-p', 'The game', '-n', '6', '--no-stats'], { encoding: 'utf8', env });
  const first = gen(file);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /tiny\.gguf holds Q8_0 tensors: they are dequantized to float32/);
  assert.match(first.stderr, /converted .*tiny\.gguf \(Q8_0, F32\) for intscale \(once; kept in /);
  assert.ok(first.stdout.startsWith('The game'));
  const again = gen(file);
  assert.equal(again.stdout, first.stdout);
  assert.equal(again.stderr, '', 'the second run reuses the conversion silently');
});

test('generate -m model.bin (llama2.c) finds tokenizer.bin beside it, or takes --tokenizer; a missing one is named', async () => {
  const { writeLlama2cCheckpoint, writeLlama2cTokenizer } = await import('../io/llama2c-writer.js');
  const d = tempDir();
  writeLlama2cCheckpoint(repoPath('models/tiny-wikitext'), path.join(d, 'model.bin'));
  const { toySentencePiece } = await import('../io/toy-sentencepiece.js');
  const { pieces, scores } = toySentencePiece();
  const env = { ...process.env, INTSCALE_CACHE: tempDir() };
  const gen = (...extra: string[]) => spawnSync(process.execPath, [CLI, 'generate', '-m', path.join(d, 'model.bin'), '-p', 'ab', '-n', '4', '--no-stats', ...extra], { encoding: 'utf8', env });
  const missing = gen();
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /tokenizer\.bin: file not found/);
  writeLlama2cTokenizer(path.join(d, 'tok.bin'), pieces, scores);
  const r = gen('--tokenizer', path.join(d, 'tok.bin'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /converted the llama2\.c checkpoint .*model\.bin with .*tok\.bin for intscale/);
  assert.ok(r.stdout.startsWith('ab'), r.stdout);
  fs.copyFileSync(path.join(d, 'tok.bin'), path.join(d, 'tokenizer.bin'));
  const beside = gen();
  assert.equal(beside.status, 0, beside.stderr);
  assert.equal(beside.stdout, r.stdout, 'the same tokenizer found beside the checkpoint');
});

test('quantize -m model.gguf writes a checkpoint that eval reads', async () => {
  const { writeGgufFrom } = await import('../io/gguf-writer.js');
  const file = path.join(tempDir(), 'tiny.gguf');
  writeGgufFrom(repoPath('models/tiny-wikitext'), file, 'F16');
  const out = path.join(tempDir(), 'q');
  const env = { ...process.env, INTSCALE_CACHE: tempDir() };
  const q = spawnSync(process.execPath, [CLI, 'quantize', '-m', file, '-o', out], { encoding: 'utf8', env });
  assert.equal(q.status, 0, q.stderr);
  const e = spawnSync(process.execPath, [CLI, 'eval', '-m', out, '-t', repoPath('data/wikitext-2-test-excerpt.txt'), '--seq-len', '64', '--max-windows', '1', '--json'], { encoding: 'utf8', env });
  assert.equal(e.status, 0, e.stderr);
  assert.ok(Number.isFinite(JSON.parse(e.stdout).perplexity));
});
