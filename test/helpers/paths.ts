/** Paths of the repository's fixtures and of ../shared beside it, from compiled tests in dist/test. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** the repository root (tests run from dist/test/…, two or three levels below it). */
export const REPO_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

export function repoPath(rel: string): string {
  return path.join(REPO_ROOT, rel);
}

export function fixturePath(name: string): string {
  return path.join(REPO_ROOT, 'test', 'fixtures', name);
}

/** ../shared/<rel> beside the repository, or null when absent (a user's fresh clone has none). */
export function sharedPath(rel: string): string | null {
  const p = path.join(REPO_ROOT, '..', 'shared', rel);
  return fs.existsSync(p) ? p : null;
}
