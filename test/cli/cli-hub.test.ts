/**
 * `-m org/name[@revision]` from the command line, against the local stand-in for the Hub
 * (test/io/hub-server.ts; HF_ENDPOINT points at it): generate downloads the model into the cache
 * given by HF_HUB_CACHE and continues the prompt exactly as from the fixture directory; --offline
 * runs from the cache with the endpoint unreachable; a repository that does not exist exits 2 with
 * one line naming it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fixturePath, repoPath } from '../helpers/paths.js';
import { startFakeHub } from '../io/hub-server.js';
import { tempDir } from '../io/temp-dir.js';

const CLI = repoPath('dist/src/cli/main.js');
const hub = await startFakeHub({ 'tiny-org/llama': { dir: fixturePath('llama') } });
after(() => hub.close());
const cache = tempDir();

/** The CLI run asynchronously (the stand-in Hub answers from this process meanwhile). */
function run(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env0 = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HF_') && k !== 'HUGGING_FACE_HUB_TOKEN'));
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...env0, HF_HOME: cache, HF_HUB_CACHE: cache, ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('generate -m org/name downloads into the Hugging Face cache and continues as the local directory does; --offline runs from the cache', async () => {
  const local = spawnSync(process.execPath, [CLI, 'generate', '-m', fixturePath('llama'), '-p', 'The game', '-n', '6', '--no-stats'], { encoding: 'utf8' });
  assert.equal(local.status, 0, local.stderr);
  const fetched = await run({ HF_ENDPOINT: hub.url }, 'generate', '-m', 'tiny-org/llama', '-p', 'The game', '-n', '6', '--no-stats');
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.equal(fetched.stdout, local.stdout);
  assert.ok(hub.requests.some((r) => r.url.includes('/resolve/')), 'the files came from the Hub stand-in');
  const offline = await run({ HF_ENDPOINT: 'http://127.0.0.1:9' }, 'generate', '-m', 'tiny-org/llama@main', '--offline', '-p', 'The game', '-n', '6', '--no-stats');
  assert.equal(offline.code, 0, offline.stderr);
  assert.equal(offline.stdout, local.stdout);
});

test('a Hub id that does not exist (or a mistyped local path) exits 2 with one line naming it, locally and on the Hub', async () => {
  const r = await run({ HF_ENDPOINT: hub.url }, 'eval', '-m', 'tiny-org/nope', '-t', fixturePath('llama') + '/config.json');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /tiny-org\/nope: no such local directory, and as a Hugging Face Hub id: tiny-org\/nope@main: the Hub answered HTTP 401: no such repository/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
