/**
 * A stand-in for the Hugging Face Hub for the hub tests: an HTTP server on 127.0.0.1 that serves
 * fixture directories as model repositories under the Hub's URL layout, the way @huggingface/hub
 * and the resolve endpoint answer them:
 *   GET /api/models/<repo>/revision/<rev>          { id, sha, ... } (401 for a gated repo without
 *                                                  the token, 403 with a wrong one, 401 for no repo)
 *   GET /api/models/<repo>/tree/<sha>?recursive=…  [{ type, path, size, oid, lfs? }]
 *   GET /<repo>/resolve/<sha>/<path>               the bytes, with Range requests (206)
 * `cutNext(path, bytes)` makes the next download of that file stop after `bytes` bytes (the
 * connection is destroyed), to test resuming. Every request is logged in `requests`.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export interface FakeRepo {
  /** directory whose files (top level) are the repository's. */
  readonly dir: string;
  /** only this bearer token may read it. */
  readonly token?: string;
}

export interface FakeHub {
  readonly url: string;
  readonly requests: { url: string; range?: string }[];
  readonly sha: string;
  cutNext(file: string, bytes: number): void;
  close(): Promise<void>;
}

const SHA = '0123456789abcdef0123456789abcdef01234567';

const gitOid = (data: Buffer): string => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export async function startFakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const requests: FakeHub['requests'] = [];
  const cuts = new Map<string, number>();
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://hub');
    requests.push({ url: url.pathname, ...(req.headers.range ? { range: req.headers.range } : {}) });
    const m = /^\/(?:api\/models\/)?([^/]+\/[^/]+)\/(revision|tree|resolve)\/([^/]+)(?:\/(.+))?$/.exec(url.pathname);
    const repo = m ? repos[m[1]!] : undefined;
    if (!m || !repo) return json(res, 401, { error: 'Repository not found' });
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      return json(res, req.headers.authorization ? 403 : 401, { error: 'Access to this model is restricted' });
    }
    const [, name, kind, rev, file] = m;
    if (rev !== 'main' && rev !== SHA) return json(res, 404, { error: 'Revision not found' });
    const files = fs.readdirSync(repo.dir).filter((f) => fs.statSync(path.join(repo.dir, f)).isFile());
    if (kind === 'revision') return json(res, 200, { _id: 'x', id: name, sha: SHA, private: !!repo.token, siblings: files.map((f) => ({ rfilename: f })) });
    if (kind === 'tree') {
      return json(res, 200, files.map((f) => {
        const data = fs.readFileSync(path.join(repo.dir, f));
        const lfs = f.endsWith('.safetensors') ? { lfs: { oid: sha256(data), size: data.length, pointerSize: 130 } } : {};
        return { type: 'file', path: f, size: data.length, oid: gitOid(data), ...lfs };
      }));
    }
    const where = path.join(repo.dir, decodeURIComponent(file ?? ''));
    if (!file || !fs.existsSync(where)) return json(res, 404, { error: 'Entry not found' });
    const data = fs.readFileSync(where);
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    if (from >= data.length && data.length > 0) {
      res.writeHead(416);
      return res.end();
    }
    res.writeHead(range ? 206 : 200, { 'Content-Length': data.length - from, 'Content-Type': 'application/octet-stream' });
    const cut = cuts.get(file);
    if (cut !== undefined) {
      cuts.delete(file);
      res.write(data.subarray(from, from + cut), () => res.socket?.end()); // every byte sent arrives, then the connection closes
      return;
    }
    res.end(data.subarray(from));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    sha: SHA,
    cutNext: (file, bytes) => cuts.set(file, bytes),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
