/** Test helpers: temporary directories removed afterwards, fixture writers, InputError assertions. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { InputError } from '../../src/errors.js';

const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'intscale-io-'));
  made.push(d);
  return d;
}

export function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value));
}

/** A raw safetensors file from a header object and a data section (for malformed-file tests). */
export function writeRawSafetensors(file: string, header: unknown, data: Uint8Array = new Uint8Array(0)): void {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([prefix, json, data]));
}

/** fn throws an InputError whose message contains every part (string) or matches it (RegExp). */
export function throwsInput(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `message "${e.message}" lacks "${p}"`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

/** p rejects with an InputError whose message matches pattern. */
export async function rejectsInput(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** The same bytes viewed as Int8 (arena arrays share one buffer: always use byteOffset). */
export function asInt8(u: Uint8Array): Int8Array {
  return new Int8Array(u.buffer, u.byteOffset, u.byteLength);
}
