/**
 * For the test writers of Meta-order checkpoints (GGUF, llama2.c): q/k rows from Hugging Face's
 * half-split rotary order into the interleaved one, written independently of the reader's inverse
 * (src/io/rotary-rows.ts): row h·D + 2j + s ← row h·D + s·D/2 + j.
 */
export function interleavedRows(w: Float32Array, heads: number, rowLength: number): Float32Array {
  const D = w.length / rowLength / heads, half = D / 2, out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let j = 0; j < half; j++) out.set(w.subarray((h * D + s * half + j) * rowLength, (h * D + s * half + j + 1) * rowLength), (h * D + 2 * j + s) * rowLength);
    }
  }
  return out;
}
