/** The model shipped inside the package (models/tiny-wikitext), used when --model is not given. */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/src/cli/default-model.js → the package root is three levels up. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_MODEL_DIR = path.join(PACKAGE_ROOT, 'models', 'tiny-wikitext');
