import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModel } from '../../src/backends/load.js';
import { generate } from '../../src/model/generate.js';
import { promptTokens, streamText } from '../../src/model/stream-text.js';
import { repoPath, fixturePath } from '../helpers/paths.js';

test('streamText: the pieces join to the decode of generate()\'s tokens; an aborted signal ends it early', async () => {
  const { model, tokenizer } = loadModel(repoPath('models/tiny-wikitext'));
  const options = { maxNewTokens: 24, temperature: 0.7, topP: 0.9, seed: 11 };
  let text = '';
  const pieces = streamText(model, tokenizer!, 'The game began development in', options);
  let step = await pieces.next();
  for (; !step.done; step = await pieces.next()) text += step.value;
  const eos = [...model.config.eosTokenIds, ...(tokenizer!.eosTokenId === null ? [] : [tokenizer!.eosTokenId])];
  const alone = generate(model, tokenizer!.encode('The game began development in'), { ...options, stopTokens: eos });
  assert.deepEqual(step.value.tokens, alone.tokens);
  assert.equal(text, tokenizer!.decode(alone.tokens.filter((t) => !eos.includes(t)), { skipSpecialTokens: true, cleanUpSpaces: false }));

  const controller = new AbortController();
  let n = 0;
  const stopped = streamText(model, tokenizer!, 'The game', { ...options, maxNewTokens: 200, signal: controller.signal });
  let s = await stopped.next();
  for (; !s.done; s = await stopped.next()) if (++n === 3) controller.abort();
  assert.equal(s.value.stoppedBy, 'aborted');
  assert.ok(s.value.tokens.length < 200);
});

test('promptTokens: chat messages go through the chat template; a model without one is refused', () => {
  const qwen = loadModel(fixturePath('qwen2')).tokenizer!;
  const messages = [{ role: 'user' as const, content: 'Hi' }];
  assert.deepEqual(promptTokens(qwen, messages), qwen.encode(qwen.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false }));
  const plain = loadModel(repoPath('models/tiny-wikitext')).tokenizer!;
  assert.throws(() => promptTokens(plain, messages), /no chat template/);
  assert.deepEqual(promptTokens(plain, 'The game'), plain.encode('The game'));
});
