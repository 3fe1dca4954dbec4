/** The integer kernels' module (src/backends/cpu/int-linear-wasm-module.ts), instantiated on a memory of its own. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildIntLinearWasmModule } from '../../../src/backends/cpu/int-linear-wasm-module.js';

test('touch reads a line of every 64 bytes of [p, end) and nothing past end, for tiles of any whole number of 16-byte units (a tile at the end of memory does not trap)', () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  const { touch } = new WebAssembly.Instance(new WebAssembly.Module(buildIntLinearWasmModule(4)), { env: { memory } }).exports as {
    touch: (p: number, end: number, sink: number) => void;
  };
  const words = new Uint32Array(memory.buffer);
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 2654435761) >>> 0;
  const end = memory.buffer.byteLength;
  for (const bytes of [16, 48, 144, 256, 272, 3472, 4096]) {
    const p = end - bytes;
    let want = 0;
    for (let at = p; at < end; at += 64) want ^= words[at / 4]!;
    touch(p, end, 0); // the sink: word 0, outside every tile here
    assert.equal(words[0], want >>> 0, `${bytes} bytes: the XOR of the first word of each 64-byte line`);
    words[0] = 1;
  }
});
