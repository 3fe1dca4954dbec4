/**
 * Rotary embedding row orders of the q and k projections. Meta's LLaMA checkpoints (and llama.cpp's
 * GGUF files, and llama2.c's) rotate interleaved pairs (2j, 2j + 1) of a head; Hugging Face's rotate
 * half-split pairs (j, j + D/2). The same weights in the two orders differ by a permutation of rows
 * within each head: HF row h·D + s·D/2 + j = interleaved row h·D + 2j + s (s ∈ {0, 1}, j < D/2).
 */

/** Rows of an interleaved-order q or k weight [heads·D, rowLength] in Hugging Face's half-split order. */
export function halfSplitRows<T extends Float32Array | Uint16Array>(w: T, heads: number, rowLength: number): T {
  const rows = w.length / rowLength, D = rows / heads, half = D / 2;
  const out = new (w.constructor as new (n: number) => T)(w.length);
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let j = 0; j < half; j++) {
        const to = h * D + s * half + j, from = h * D + 2 * j + s;
        out.set(w.subarray(from * rowLength, (from + 1) * rowLength), to * rowLength);
      }
    }
  }
  return out;
}
