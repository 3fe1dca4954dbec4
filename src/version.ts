/** The package's own version, read once from package.json (dist/src/version.js → ../../package.json). */
import * as fs from 'node:fs';

export const TOOL_VERSION: string = (
  JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
