/**
 * Errors intscale raises for bad input. Each names what was wrong and where (file, tensor),
 * so a user can fix the input without reading a stack trace. The CLI prints only the message.
 */
export class InputError extends Error {
  /** the file the problem was found in, when there is one. */
  readonly file: string | undefined;
  /** the tensor concerned, when there is one. */
  readonly tensor: string | undefined;

  constructor(message: string, where: { file?: string; tensor?: string } = {}) {
    super(message);
    this.name = 'InputError';
    this.file = where.file;
    this.tensor = where.tensor;
  }
}
