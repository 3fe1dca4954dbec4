/**
 * A toy SentencePiece vocabulary for the GGUF and llama2.c tokenizer tests, padded to `size` (the
 * embedded model's 2048 rows): <unk>, <s>, </s>, the 256 byte pieces <0xXX>, nine scored pieces
 * whose merges a test can follow by hand, then fillers no merge can reach. Token types as GGUF
 * numbers them (2 unknown, 3 control, 6 byte, 1 normal).
 */
const SCORED: [string, number][] = [['▁', -1], ['a', -2], ['b', -3], ['c', -4], ['ab', -5], ['▁a', -6], ['▁ab', -7], ['abc', -8], ['▁abc', -9]];

export function toySentencePiece(size = 2048): { pieces: string[]; scores: number[]; types: number[] } {
  const pieces = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`), ...SCORED.map((p) => p[0])];
  const scores = [0, 0, 0, ...new Array<number>(256).fill(0), ...SCORED.map((p) => p[1])];
  const types = [2, 3, 3, ...new Array<number>(256).fill(6), ...SCORED.map(() => 1)];
  while (pieces.length < size) {
    pieces.push(`⟨filler ${pieces.length}⟩`);
    scores.push(-1000);
    types.push(1);
  }
  return { pieces, scores, types };
}
