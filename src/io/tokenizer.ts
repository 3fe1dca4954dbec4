/**
 * The model's tokenizer (tokenizer.json + optional tokenizer_config.json, via
 * @huggingface/tokenizers) and its chat template (via @huggingface/jinja), behaving like
 * transformers' AutoTokenizer: encode(text) adds special tokens as tokenizer(text) would.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from '../errors.js';

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export interface ModelTokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly vocabSize: number;
  readonly hasChatTemplate: boolean;
  /** addSpecialTokens (default true) = transformers' tokenizer(text); false for rendered chat templates. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** cleanUpSpaces: the tokenizer's clean-up of spaces before punctuation (default: as its config says; off for streaming, which needs each prefix's text to stay a prefix). */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean; cleanUpSpaces?: boolean }): string;
  /**
   * The chat template rendered to text (encode it with addSpecialTokens: false: templates write
   * the BOS themselves). addGenerationPrompt appends the assistant header to answer after.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt: boolean }): string;
}

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

export function loadTokenizer(dir: string): ModelTokenizer {
  const tokenizerPath = path.join(dir, TOKENIZER_FILE);
  if (!fs.existsSync(tokenizerPath)) {
    const hint = fs.existsSync(path.join(dir, 'tokenizer.model'))
      ? ' (found only a sentencepiece tokenizer.model; save the tokenizer with transformers to produce tokenizer.json)'
      : '';
    throw new InputError(`${tokenizerPath}: file not found; intscale needs the fast tokenizer's tokenizer.json${hint}`, {
      file: tokenizerPath,
    });
  }
  const tokenizerJson = readJsonObject(tokenizerPath);
  const configPath = path.join(dir, TOKENIZER_CONFIG_FILE);
  const config = fs.existsSync(configPath) ? readJsonObject(configPath) : {};
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new InputError(`${tokenizerPath}: cannot build the tokenizer (${(e as Error).message})`, { file: tokenizerPath });
  }

  const bosToken = tokenString(config['bos_token']);
  const eosToken = tokenString(config['eos_token']);
  const idOf = (t: string | null, key: string): number | null => {
    if (t === null) return null;
    const id = tokenizer.token_to_id(t);
    if (id === undefined) throw new InputError(`${configPath}: ${key} "${t}" is not in the vocabulary of ${TOKENIZER_FILE}`, { file: configPath });
    return id;
  };
  const bosTokenId = idOf(bosToken, 'bos_token');
  const eosTokenId = idOf(eosToken, 'eos_token');
  // Like LlamaTokenizerFast: explicit add_bos_token / add_eos_token replace the post-processor's template.
  const addBos = typeof config['add_bos_token'] === 'boolean' ? (config['add_bos_token'] as boolean) : null;
  const addEos = typeof config['add_eos_token'] === 'boolean' ? (config['add_eos_token'] as boolean) : null;
  const templateSource = chatTemplateSource(dir, config, configPath);
  const template = templateSource === null ? null : compileTemplate(templateSource.text, templateSource.file);
  const specialTokens = Object.fromEntries(
    ['bos_token', 'eos_token', 'unk_token', 'pad_token'].map((k) => [k, tokenString(config[k]) ?? '']),
  );

  return {
    bosTokenId,
    eosTokenId,
    bosToken,
    eosToken,
    vocabSize: tokenizer.get_vocab(true).size,
    hasChatTemplate: template !== null,
    encode(text, { addSpecialTokens = true } = {}) {
      if (!addSpecialTokens) return tokenizer.encode(text, { add_special_tokens: false }).ids;
      if (addBos === null && addEos === null) return tokenizer.encode(text, { add_special_tokens: true }).ids;
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      if (addBos && bosTokenId !== null) ids.unshift(bosTokenId);
      if (addEos && eosTokenId !== null) ids.push(eosTokenId);
      return ids;
    },
    decode(ids, { skipSpecialTokens = false, cleanUpSpaces } = {}) {
      if (ids.length === 0) return '';
      return tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens, ...(cleanUpSpaces === undefined ? {} : { clean_up_tokenization_spaces: cleanUpSpaces }) });
    },
    applyChatTemplate(messages, { addGenerationPrompt }) {
      if (template === null) {
        throw new InputError(`${dir}: the tokenizer has no chat_template (in ${TOKENIZER_CONFIG_FILE} or ${CHAT_TEMPLATE_FILE})`, { file: configPath });
      }
      try {
        return template.render({
          messages: messages.map((m) => ({ role: m.role, content: m.content })),
          add_generation_prompt: addGenerationPrompt,
          ...specialTokens,
        });
      } catch (e) {
        const file = templateSource!.file;
        throw new InputError(`${file}: chat_template failed to render (${(e as Error).message})`, { file });
      }
    },
  };
}

function readJsonObject(file: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file}: not valid JSON (${(e as Error).message})`, { file });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new InputError(`${file}: expected a JSON object`, { file });
  return json as Record<string, unknown>;
}

/** A special token as tokenizer_config.json writes it: a string or an AddedToken {content}. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

/** chat_template.jinja wins over tokenizer_config's chat_template (as in transformers); a list picks "default". */
function chatTemplateSource(dir: string, config: Record<string, unknown>, configPath: string): { text: string; file: string } | null {
  const jinjaPath = path.join(dir, CHAT_TEMPLATE_FILE);
  if (fs.existsSync(jinjaPath)) return { text: fs.readFileSync(jinjaPath, 'utf8'), file: jinjaPath };
  const t = config['chat_template'];
  if (t === undefined || t === null) return null;
  if (typeof t === 'string') return { text: t, file: configPath };
  if (Array.isArray(t)) {
    const named = t.find((x) => x && typeof x === 'object' && (x as { name?: unknown }).name === 'default');
    const template = (named as { template?: unknown } | undefined)?.template;
    if (typeof template === 'string') return { text: template, file: configPath };
  }
  throw new InputError(`${configPath}: chat_template must be a string or a list with a "default" entry`, { file: configPath });
}

function compileTemplate(source: string, file: string): Template {
  try {
    return new Template(source);
  } catch (e) {
    throw new InputError(`${file}: chat_template does not parse (${(e as Error).message})`, { file });
  }
}
