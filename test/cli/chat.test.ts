/**
 * `intscale chat` with turns piped on stdin (the qwen2 fixture has a chat template): each answer is
 * the library's streamText answer to the whole conversation so far (the history is kept), /reset
 * forgets it, and a model without a chat template is refused with one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadModel } from '../../src/backends/load.js';
import type { ChatMessage } from '../../src/io/tokenizer.js';
import { streamText } from '../../src/model/stream-text.js';
import { fixturePath, repoPath } from '../helpers/paths.js';

const CLI = repoPath('dist/src/cli/main.js');

test('chat: answers stream for each piped turn, with the conversation so far; /reset forgets it', async () => {
  const dir = fixturePath('qwen2');
  const r = spawnSync(process.execPath, [CLI, 'chat', '-m', dir, '-n', '6', '--temperature', '0', '--system', 'Be brief.'], {
    input: 'Hello there\nAnd then?\n/reset\nAnd then?\n', encoding: 'utf8', timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const { model, tokenizer } = loadModel(dir);
  const answer = async (history: ChatMessage[]) => {
    let text = '';
    for await (const piece of streamText(model, tokenizer!, history, { maxNewTokens: 6, temperature: 0, topP: 1, seed: 0 })) text += piece;
    return text;
  };
  const system: ChatMessage = { role: 'system', content: 'Be brief.' };
  const first = await answer([system, { role: 'user', content: 'Hello there' }]);
  const second = await answer([system, { role: 'user', content: 'Hello there' }, { role: 'assistant', content: first }, { role: 'user', content: 'And then?' }]);
  const afterReset = await answer([system, { role: 'user', content: 'And then?' }]);
  assert.notEqual(second, afterReset, 'the history changes the answer (else this test could not see it kept)');
  assert.equal(r.stdout, `${first}\n${second}\n${afterReset}\n`);
});

test('chat: a model without a chat template is refused with one line, exit 2', () => {
  const r = spawnSync(process.execPath, [CLI, 'chat', '-m', repoPath('models/tiny-wikitext')], { input: 'Hi\n', encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no chat template; use intscale generate/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
