/**
 * Text from a growing list of tokens, piece by piece, as text-generation servers stream it: each
 * new token's text is the decode of a short window of recent tokens minus the decode of the window
 * without it, so a character split across tokens (bytes of one UTF-8 sequence) comes out whole
 * once complete, and the cost per token does not grow with the length of the answer. Decoding
 * runs without the tokenizer's clean-up of spaces (which rewrites earlier text once later tokens
 * come), so the pieces joined are exactly text().
 */
import type { ModelTokenizer } from './tokenizer.js';

export interface IncrementalDecoder {
  /** adds a token; returns the text it completes ('' while a character is still partial). */
  push(token: number): string;
  /** the text still held back (a character left incomplete by the last token), handed out now: call it at the end. */
  finish(): string;
  /** the text of every piece returned so far. */
  text(): string;
}

export function incrementalDecoder(tokenizer: ModelTokenizer): IncrementalDecoder {
  const tokens: number[] = [];
  /** tokens[prefixOffset, readOffset) were emitted and give the context of the next piece. */
  let prefixOffset = 0;
  let readOffset = 0;
  let emitted = '';
  const decode = (from: number, to: number) => tokenizer.decode(tokens.slice(from, to), { skipSpecialTokens: true, cleanUpSpaces: false });
  return {
    push(token) {
      tokens.push(token);
      const prefix = decode(prefixOffset, readOffset);
      const full = decode(prefixOffset, tokens.length);
      if (full.length <= prefix.length || full.endsWith('\uFFFD') || !full.startsWith(prefix)) return '';
      const piece = full.slice(prefix.length);
      prefixOffset = readOffset;
      readOffset = tokens.length;
      emitted += piece;
      return piece;
    },
    finish() {
      const prefix = decode(prefixOffset, readOffset);
      const full = decode(prefixOffset, tokens.length);
      const rest = full.startsWith(prefix) ? full.slice(prefix.length) : '';
      prefixOffset = readOffset = tokens.length;
      emitted += rest;
      return rest;
    },
    text: () => emitted,
  };
}
