import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { tempDir, throwsInput, writeJson } from './temp-dir.js';

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** A tiny byte-level BPE tokenizer (like Llama 3's) whose post-processor prepends <s>. */
const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
// byte-level alphabet: \u0120 is the space byte, \u010a the newline byte
for (const ch of 'abcdefghijklmnopqrstuvwxyz!\u0120\u010a') vocab[ch] = Object.keys(vocab).length;
const merges = ['h e', 'l l', 'he ll', 'hell o', '\u0120 w', 'o r', '\u0120w or', 'l d', '\u0120wor ld'];
for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
const USER = Object.keys(vocab).length;
const ASSISTANT = USER + 1;
const id = (t: string): number => vocab[t]!;

function tokenizerJson(): object {
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>'), special(USER, '<|user|>'), special(ASSISTANT, '<|assistant|>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

const template =
  '{{ bos_token }}{% for m in messages %}\n<|{{ m.role }}|> {{ m.content }} {{ eos_token }}\n{% endfor %}\n{% if add_generation_prompt %}<|assistant|>{% endif %}';

test('encode adds BOS like the post-processor; decode; special token ids', () => {
  const dir = tempDir();
  writeJson(path.join(dir, 'tokenizer.json'), tokenizerJson());
  writeJson(path.join(dir, 'tokenizer_config.json'), { bos_token: '<s>', eos_token: { content: '</s>', special: true }, clean_up_tokenization_spaces: false });
  const tok = loadTokenizer(dir);
  assert.equal(tok.bosTokenId, 1);
  assert.equal(tok.eosTokenId, 2);
  assert.equal(tok.eosToken, '</s>');
  const helloWorld = [id('hello'), id('\u0120world'), id('!')];
  assert.deepEqual(tok.encode('hello world!'), [1, ...helloWorld]);
  assert.deepEqual(tok.encode('hello world!', { addSpecialTokens: false }), helloWorld);
  assert.deepEqual(tok.encode('hello zebra', { addSpecialTokens: false }), [id('hello'), id('\u0120'), ...'zebra'].map((t) => (typeof t === 'number' ? t : id(t))));
  assert.equal(tok.decode([1, ...helloWorld, 2], { skipSpecialTokens: true }), 'hello world!');
  assert.equal(tok.decode([1, id('hello')]), '<s>hello');
  assert.equal(tok.vocabSize, ASSISTANT + 1);
  assert.equal(tok.decode([]), '');
  assert.equal(tok.hasChatTemplate, false);
  throwsInput(() => tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }), 'no chat_template');
});

test('tokenizer_config add_bos_token / add_eos_token override the post-processor, as LlamaTokenizerFast does', () => {
  const dir = tempDir();
  writeJson(path.join(dir, 'tokenizer.json'), tokenizerJson());
  writeJson(path.join(dir, 'tokenizer_config.json'), { bos_token: '<s>', eos_token: '</s>', add_bos_token: false, add_eos_token: true });
  assert.deepEqual(loadTokenizer(dir).encode('hello'), [id('hello'), 2]);
  writeJson(path.join(dir, 'tokenizer_config.json'), { bos_token: '<s>', eos_token: '</s>', add_bos_token: true });
  assert.deepEqual(loadTokenizer(dir).encode('hello'), [1, id('hello')]);
});

test('chat template from tokenizer_config.json, rendered with trim_blocks like transformers', () => {
  const dir = tempDir();
  writeJson(path.join(dir, 'tokenizer.json'), tokenizerJson());
  writeJson(path.join(dir, 'tokenizer_config.json'), { bos_token: '<s>', eos_token: '</s>', chat_template: template });
  const tok = loadTokenizer(dir);
  assert.equal(tok.hasChatTemplate, true);
  const messages = [{ role: 'user', content: 'hello world' }, { role: 'assistant', content: 'world' }];
  assert.equal(
    tok.applyChatTemplate(messages, { addGenerationPrompt: true }),
    '<s><|user|> hello world </s>\n<|assistant|> world </s>\n<|assistant|>',
  );
  assert.equal(tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: false }), '<s><|user|> hello world </s>\n');
  const ids = tok.encode(tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: false }), { addSpecialTokens: false });
  assert.deepEqual(ids, [1, USER, id('\u0120'), id('hello'), id('\u0120world'), id('\u0120'), 2, id('\u010a')]);
  assert.equal(tok.decode(ids), '<s><|user|> hello world </s>\n');
});

test('chat_template.jinja file and list-form chat_template', () => {
  const dir = tempDir();
  writeJson(path.join(dir, 'tokenizer.json'), tokenizerJson());
  writeJson(path.join(dir, 'tokenizer_config.json'), {
    bos_token: '<s>', eos_token: '</s>', chat_template: [{ name: 'tool_use', template: 'X' }, { name: 'default', template: 'D{{ messages[0].content }}' }],
  });
  assert.equal(loadTokenizer(dir).applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }), 'Dhi');
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), 'J{{ eos_token }}');
  assert.equal(loadTokenizer(dir).applyChatTemplate([], { addGenerationPrompt: true }), 'J</s>');
});

test('tokenizer errors: missing tokenizer.json, bad JSON, bos not in vocab, bad template', () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'tokenizer.model'), '');
  throwsInput(() => loadTokenizer(dir), 'tokenizer.json', 'not found', 'tokenizer.model');
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"model":');
  throwsInput(() => loadTokenizer(dir), 'tokenizer.json', 'not valid JSON');
  writeJson(path.join(dir, 'tokenizer.json'), tokenizerJson());
  writeJson(path.join(dir, 'tokenizer_config.json'), { bos_token: '<|begin|>' });
  throwsInput(() => loadTokenizer(dir), 'tokenizer_config.json', 'bos_token', '<|begin|>', 'not in the vocabulary');
  writeJson(path.join(dir, 'tokenizer_config.json'), { chat_template: '{% for %}' });
  throwsInput(() => loadTokenizer(dir), 'tokenizer_config.json', 'chat_template');
  writeJson(path.join(dir, 'tokenizer_config.json'), { chat_template: "{{ raise_exception('roles must alternate') }}" });
  throwsInput(() => loadTokenizer(dir).applyChatTemplate([], { addGenerationPrompt: true }), 'tokenizer_config.json: chat_template failed to render', 'roles must alternate');
  // a template in chat_template.jinja is named as that file, when it throws and when it does not parse
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), "{{ raise_exception('no system role') }}");
  throwsInput(() => loadTokenizer(dir).applyChatTemplate([], { addGenerationPrompt: true }), 'chat_template.jinja: chat_template failed to render', 'no system role');
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), '{% if %}');
  throwsInput(() => loadTokenizer(dir), 'chat_template.jinja: chat_template does not parse');
});
