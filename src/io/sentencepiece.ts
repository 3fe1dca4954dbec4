/**
 * A SentencePiece BPE vocabulary (pieces with scores, "▁" for a space, <0xXX> byte pieces) as a
 * tokenizer.json, the way transformers' LlamaTokenizerFast spells it: a "▁" prepended and spaces
 * replaced by "▁", BPE merges derived from the scores, byte fallback, and a decoder that undoes all
 * of it. Shared by GGUF ("llama" tokenizers) and llama2.c tokenizer.bin files.
 */

/**
 * The merges of a SentencePiece vocabulary as transformers derives them for a fast tokenizer
 * (convert_slow_tokenizer's generate_merges): every split of a piece into two pieces of the vocabulary
 * is a merge ranked by the piece's score (ties: the longer left, then the longer right part first;
 * within a piece, by the parts' ids). Lengths in code points.
 */
export function sentencePieceMerges(tokens: readonly string[], scores: readonly number[]): string[] {
  const id = new Map(tokens.map((t, i) => [t, i]));
  const merges: { l: string; r: string; score: number; ll: number; rl: number }[] = [];
  tokens.forEach((piece, i) => {
    const chars = Array.from(piece);
    const local: typeof merges = [];
    for (let at = 1; at < chars.length; at++) {
      const l = chars.slice(0, at).join(''), r = chars.slice(at).join('');
      if (id.has(l) && id.has(r)) local.push({ l, r, score: scores[i] ?? 0, ll: at, rl: chars.length - at });
    }
    local.sort((a, b) => id.get(a.l)! - id.get(b.l)! || id.get(a.r)! - id.get(b.r)!);
    merges.push(...local);
  });
  merges.sort((a, b) => b.score - a.score || b.ll - a.ll || b.rl - a.rl);
  return merges.map((m) => `${m.l} ${m.r}`);
}

/** A tokenizer.json added token: matched whole before the model splits the text (`special`: a control token). */
export function addedToken(id: number, content: string, special: boolean): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/** The normalizer, decoder and model of a SentencePiece tokenizer.json (`unk`: the unknown piece, if any). */
export function sentencePieceParts(tokens: readonly string[], scores: readonly number[], unk: string | null): Record<string, unknown> {
  return {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: {
      type: 'BPE', dropout: null, unk_token: unk, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true,
      byte_fallback: true, ignore_merges: false, vocab: Object.fromEntries(tokens.map((t, i) => [t, i])), merges: sentencePieceMerges(tokens, scores),
    },
  };
}
