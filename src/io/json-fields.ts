/**
 * Typed reads of fields from a parsed JSON object (config.json, generation_config.json), with
 * InputErrors that name the file, the field and the value found.
 */
import { InputError } from '../errors.js';

export type Json = Record<string, unknown>;

/** Typed access to the fields of one JSON object, with errors naming the field. */
export class FieldReader {
  /** where names the object in messages (defaults to the file). */
  constructor(
    private readonly obj: Json,
    private readonly file: string,
    private readonly where: string = file,
  ) {}

  private fail(key: string, want: string): never {
    const got = this.obj[key];
    throw new InputError(
      `${this.where}: "${key}" must be ${want}, got ${got === undefined ? 'nothing (field missing)' : JSON.stringify(got)}`,
      { file: this.file },
    );
  }

  private present(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  positiveInt(key: string): number {
    const v = this.obj[key];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
    return this.fail(key, 'a positive integer');
  }

  optionalPositiveInt(key: string): number | undefined {
    return this.present(key) ? this.positiveInt(key) : undefined;
  }

  positiveNumber(key: string): number {
    const v = this.obj[key];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
    return this.fail(key, 'a positive number');
  }

  optionalPositiveNumber(key: string): number | undefined {
    return this.present(key) ? this.positiveNumber(key) : undefined;
  }

  optionalNumber(key: string): number | undefined {
    if (!this.present(key)) return undefined;
    const v = this.obj[key];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    return this.fail(key, 'a number');
  }

  optionalBool(key: string): boolean | undefined {
    if (!this.present(key)) return undefined;
    const v = this.obj[key];
    if (typeof v === 'boolean') return v;
    return this.fail(key, 'true or false');
  }

  optionalTokenId(key: string): number | undefined {
    if (!this.present(key)) return undefined;
    const v = this.obj[key];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    return this.fail(key, 'a non-negative integer token id');
  }

  /** an id, a list of ids, or absent/null (→ []). */
  tokenIdList(key: string): number[] {
    if (!this.present(key)) return [];
    const v = this.obj[key];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) return [...(v as number[])];
    return this.fail(key, 'a token id or a list of token ids');
  }
}
