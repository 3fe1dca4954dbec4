/**
 * Hub ids (io/hub.ts) against a local stand-in for the Hub (hub-server.ts, no network): the files a
 * model needs land in the Hugging Face cache layout and load to the fixture's logits; a second run
 * downloads nothing; offline reads the cache only; a cut connection resumes with a Range request;
 * a gated repository, a wrong token, no such repository or revision, a repository without
 * safetensors and an unreachable endpoint each give a message that says what to do.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseHubId, resolveHubModel, type HubProgress } from '../../src/io/hub.js';
import { InputError } from '../../src/errors.js';
import { loadModel } from '../../src/backends/load.js';
import { modelEngine } from '../../src/model/engine.js';
import { fixturePath } from '../helpers/paths.js';
import { startFakeHub } from './hub-server.js';
import { rejectsInput, tempDir } from './temp-dir.js';

// nothing from the environment of the machine the tests run on
for (const v of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_HUB_OFFLINE', 'HF_ENDPOINT', 'HF_HUB_CACHE', 'HF_TOKEN_PATH']) delete process.env[v];
process.env.HF_HOME = tempDir();

const llama = fixturePath('llama');
const binOnly = tempDir();
fs.copyFileSync(path.join(llama, 'config.json'), path.join(binOnly, 'config.json'));
fs.writeFileSync(path.join(binOnly, 'pytorch_model.bin'), 'not really');
const hub = await startFakeHub({
  'tiny-org/llama': { dir: llama },
  'tiny-org/gated': { dir: llama, token: 'hf_good' },
  'tiny-org/bin-only': { dir: binOnly },
});
after(() => hub.close());

const LLAMA = { repo: 'tiny-org/llama', revision: 'main' };
const NEEDED = ['config.json', 'generation_config.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors',
  'model-00003-of-00003.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json'];


test('hub ids: org/name[@revision] parse; paths and other text do not', () => {
  assert.deepEqual(parseHubId('TinyLlama/TinyLlama-1.1B-Chat-v1.0'), { repo: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0', revision: 'main' });
  assert.deepEqual(parseHubId('org/name@v1.0'), { repo: 'org/name', revision: 'v1.0' });
  for (const text of ['./models/x', '/abs/path', 'a/b/c', 'models', '../x', 'org/..', 'org/name@']) assert.equal(parseHubId(text), null, text);
});

test('hub: a model downloads into the Hugging Face cache layout (only the files it needs, symlinks to blobs, refs/main) and loads to the fixture\'s logits', async () => {
  const cacheDir = tempDir();
  const seen = new Map<string, HubProgress>();
  const dir = await resolveHubModel(LLAMA, { endpoint: hub.url, cacheDir, onProgress: (p) => seen.set(p.file, p) });
  const storage = path.join(cacheDir, 'models--tiny-org--llama');
  assert.equal(dir, path.join(storage, 'snapshots', hub.sha));
  assert.deepEqual(fs.readdirSync(dir).sort(), NEEDED, 'reference.safetensors is not in the index: not fetched');
  for (const name of NEEDED) {
    const link = fs.readlinkSync(path.join(dir, name));
    assert.match(link, /^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/, `${name} is a relative symlink to its blob`);
    assert.deepEqual(fs.readFileSync(path.join(dir, name)), fs.readFileSync(path.join(llama, name)), name);
    assert.equal(seen.get(name)?.bytes, fs.statSync(path.join(llama, name)).size, `${name}: progress reached its size`);
  }
  assert.equal(fs.readFileSync(path.join(storage, 'refs', 'main'), 'utf8'), hub.sha);
  const logits = (d: string) => modelEngine(loadModel(d).model).open(8).feed([1, 5, 9, 2]);
  assert.deepEqual(logits(dir), logits(llama));
});

test('hub: a second run downloads nothing; offline (flag or HF_HUB_OFFLINE) reads the cache without the network, and names what is missing', async () => {
  const cacheDir = tempDir();
  const dir = await resolveHubModel(LLAMA, { endpoint: hub.url, cacheDir });
  const before = hub.requests.length;
  assert.equal(await resolveHubModel(LLAMA, { endpoint: hub.url, cacheDir }), dir);
  assert.deepEqual(hub.requests.slice(before).filter((r) => r.url.includes('/resolve/')), [], 'no file fetched again');
  const dead = 'http://127.0.0.1:9';
  assert.equal(await resolveHubModel(LLAMA, { endpoint: dead, cacheDir, offline: true }), dir);
  assert.equal(await resolveHubModel({ ...LLAMA, revision: hub.sha }, { endpoint: dead, cacheDir, offline: true }), dir, 'by commit');
  process.env.HF_HUB_OFFLINE = '1';
  try {
    assert.equal(await resolveHubModel(LLAMA, { endpoint: dead, cacheDir }), dir);
    await rejectsInput(resolveHubModel({ repo: 'tiny-org/other', revision: 'main' }, { endpoint: dead, cacheDir }), /tiny-org\/other@main is not in the Hugging Face cache.*without --offline/);
  } finally {
    delete process.env.HF_HUB_OFFLINE;
  }
});

test('hub: a connection cut mid-file fails saying to run again, and the next run resumes with a Range request to the same bytes', async () => {
  const cacheDir = tempDir();
  const shard = 'model-00001-of-00003.safetensors';
  hub.cutNext(shard, 100000);
  let saved = -1;
  await assert.rejects(resolveHubModel(LLAMA, { endpoint: hub.url, cacheDir }), (e: Error) => {
    const m = /\/model-00001-of-00003\.safetensors: the download was cut with (\d+) of 287272 bytes saved.*run the command again to resume/.exec(e.message);
    assert.ok(e instanceof InputError && m, e.message);
    saved = Number(m[1]);
    return true;
  });
  assert.equal(saved, 100000, 'every byte that arrived is kept');
  const before = hub.requests.length;
  const dir = await resolveHubModel(LLAMA, { endpoint: hub.url, cacheDir });
  assert.deepEqual(hub.requests.slice(before).filter((r) => r.url.endsWith(shard)).map((r) => r.range), [`bytes=${saved}-`], 'resumed where the saved bytes end');
  assert.deepEqual(fs.readFileSync(path.join(dir, shard)), fs.readFileSync(path.join(llama, shard)));
});

test('hub: gated without a token, a refused token, no such repository or revision, no safetensors, no network: each says what to do', async () => {
  const cacheDir = tempDir();
  const gated = { repo: 'tiny-org/gated', revision: 'main' };
  await rejectsInput(resolveHubModel(gated, { endpoint: hub.url, cacheDir }), /HTTP 401.*gated or private.*HF_TOKEN=hf_/);
  await rejectsInput(resolveHubModel(gated, { endpoint: hub.url, cacheDir, token: 'hf_wrong' }), /refused the token \(HTTP 403\).*accept its terms/);
  const dir = await resolveHubModel(gated, { endpoint: hub.url, cacheDir, token: 'hf_good' });
  assert.ok(fs.existsSync(path.join(dir, 'model-00003-of-00003.safetensors')), 'the right token downloads');
  process.env.HF_TOKEN = 'hf_good';
  try {
    assert.equal(await resolveHubModel(gated, { endpoint: hub.url, cacheDir }), dir, 'HF_TOKEN is read');
  } finally {
    delete process.env.HF_TOKEN;
  }
  await rejectsInput(resolveHubModel({ repo: 'tiny-org/nope', revision: 'main' }, { endpoint: hub.url, cacheDir }), /tiny-org\/nope@main.*no such repository/);
  await rejectsInput(resolveHubModel({ repo: 'tiny-org/llama', revision: 'v9' }, { endpoint: hub.url, cacheDir }), /tiny-org\/llama@v9: no such model repository or revision.*HTTP 404/);
  await rejectsInput(resolveHubModel({ repo: 'tiny-org/bin-only', revision: 'main' }, { endpoint: hub.url, cacheDir }), /has no safetensors weights.*pytorch_model\.bin/);
  await rejectsInput(resolveHubModel(LLAMA, { endpoint: 'http://127.0.0.1:9', cacheDir: tempDir() }), /cannot reach http:\/\/127\.0\.0\.1:9 to fetch tiny-org\/llama@main.*--offline/);
});
