/**
 * Models named by their Hugging Face Hub id (`org/name[@revision]`), fetched into the standard
 * Hugging Face cache so other tools reuse our downloads and we reuse theirs:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME default ~/.cache/huggingface)
 *     models--org--name/blobs/<etag>                  the file's bytes (etag: LFS sha256, else git oid)
 *     models--org--name/snapshots/<commit>/<path>     relative symlink to its blob
 *     models--org--name/refs/<revision>               the commit a branch or tag resolved to
 *
 * The Hub client (@huggingface/hub) resolves the revision to its commit and lists the files with
 * their sizes and etags; the bytes are fetched here so that a download shows progress, resumes from
 * `<blob>.incomplete` after a cut connection (an HTTP Range request) and is checked against the
 * listed size. Only the files a model needs are fetched: the root's JSON files (config, tokenizer,
 * generation config), a chat template, and the safetensors weights (the shards of
 * model.safetensors.index.json, or model.safetensors). HF_ENDPOINT, HF_TOKEN (or the token file of
 * `huggingface-cli login`) and HF_HUB_OFFLINE are honoured as the Python client does.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getHFHubCachePath, getRepoFolderName, HubApiError, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { InputError } from '../errors.js';
import { INDEX_FILE, SINGLE_FILE } from './weight-source.js';

/** A model on the Hub: repository and revision (a branch, tag or commit; default main). */
export interface HubId {
  readonly repo: string;
  readonly revision: string;
}

const COMMIT = /^[0-9a-f]{40}$/;
const HUB_ID = /^([A-Za-z0-9][\w.-]*)\/([\w.-]+)(?:@([\w./-]+))?$/;

/** `org/name[@revision]` as a HubId, or null when the text is not one (a local path, say). */
export function parseHubId(text: string): HubId | null {
  const m = HUB_ID.exec(text);
  if (!m || m[2]!.startsWith('.') || m[2]!.endsWith('.')) return null;
  return { repo: `${m[1]}/${m[2]}`, revision: m[3] ?? 'main' };
}

/** Bytes of the files a download fetches: done so far (resumed parts included) of the total. */
export interface HubProgress {
  readonly file: string;
  readonly bytes: number;
  readonly totalBytes: number;
}

export interface HubOptions {
  /** default HF_ENDPOINT, else https://huggingface.co. */
  readonly endpoint?: string;
  /** default HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), else the token file $HF_HOME/token. */
  readonly token?: string;
  /** default HF_HUB_CACHE / HF_HOME/hub, as getHFHubCachePath. */
  readonly cacheDir?: string;
  /** use only the cache (default: HF_HUB_OFFLINE set to 1/true/yes/on). */
  readonly offline?: boolean;
  /** called as bytes arrive (and once per file already cached). */
  readonly onProgress?: (p: HubProgress) => void;
}

const envFlag = (v: string | undefined): boolean => v !== undefined && /^(1|true|yes|on)$/i.test(v);

function hubToken(explicit: string | undefined): string | undefined {
  if (explicit) return explicit;
  const env = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  if (env) return env.trim();
  const home = process.env.HF_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  const file = process.env.HF_TOKEN_PATH ?? path.join(home, 'token');
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Whether `name` (a path in the repository) is one of the files a model needs, besides its weights. */
const isModelFile = (name: string): boolean => !name.includes('/') && (name.endsWith('.json') || name.endsWith('.jinja'));

/** The weight files of a listing, from its index when it has one; null when it has no safetensors weights. */
function weightFiles(names: ReadonlySet<string>, readIndex: () => string): string[] | null {
  if (names.has(INDEX_FILE)) {
    const index = JSON.parse(readIndex()) as { weight_map?: Record<string, string> };
    const shards = [...new Set(Object.values(index.weight_map ?? {}))];
    if (shards.length === 0) throw new InputError(`${INDEX_FILE} lists no weight files`);
    return shards;
  }
  return names.has(SINGLE_FILE) ? [SINGLE_FILE] : null;
}

/** The message for a failed Hub request (network, token, not found). */
function hubError(e: unknown, id: HubId, endpoint: string, token: string | undefined): Error {
  const what = `${id.repo}@${id.revision}`;
  if (e instanceof HubApiError) {
    const status = e.statusCode;
    if (status === 401 || status === 403) {
      return new InputError(token
        ? `${what}: the Hub refused the token (HTTP ${status}): the repository is gated or private and this token has no access; accept its terms at ${endpoint}/${id.repo} or use another token`
        : `${what}: the Hub answered HTTP ${status}: no such repository, or a gated or private one; for a gated model pass a token: HF_TOKEN=hf_... (or run \`huggingface-cli login\`)`);
    }
    if (status === 404) return new InputError(`${what}: no such model repository or revision at ${endpoint} (HTTP 404)`);
    return new InputError(`${what}: the Hub answered HTTP ${status} (${e.message})`);
  }
  const cause = e instanceof Error ? `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ''}` : String(e);
  return new InputError(`cannot reach ${endpoint} to fetch ${what} (${cause}); with the model already in the cache, pass --offline (or set HF_HUB_OFFLINE=1)`);
}

/**
 * Fetches url into `blob`, resuming from `<blob>.incomplete`; checks the size; returns once the
 * blob is complete. `onBytes` gets the bytes of this file so far.
 */
async function fetchBlob(url: string, blob: string, size: number, token: string | undefined, onBytes: (n: number) => void): Promise<void> {
  const part = `${blob}.incomplete`;
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  if (have > size) have = 0;
  if (have < size || size === 0) {
    const headers: Record<string, string> = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (have > 0) headers.Range = `bytes=${have}-`;
    const res = await fetch(url, { headers, redirect: 'follow' });
    if (res.status !== 200 && res.status !== 206 && !(res.status === 416 && have === size)) {
      throw new HubApiError(url, res.status, undefined, `${url}: HTTP ${res.status}`);
    }
    if (res.status === 200) have = 0; // the server sent the whole file
    onBytes(have);
    if (res.body && res.status !== 416) {
      // each chunk written before the next is read, so a cut keeps every byte that arrived
      let got = have;
      const fd = fs.openSync(part, have > 0 ? 'a' : 'w');
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          fs.writeSync(fd, chunk);
          got += chunk.length;
          onBytes(got);
        }
      } catch (e) {
        const cause = e instanceof Error ? `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ''}` : String(e);
        throw new InputError(`${url}: the download was cut with ${got} of ${size} bytes saved (${cause}); run the command again to resume`);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  if (!fs.existsSync(part)) fs.writeFileSync(part, ''); // an empty file with no body
  const got = fs.statSync(part).size;
  if (got !== size) throw new InputError(`${url}: got ${got} bytes, the Hub lists ${size}; run the command again to resume`);
  fs.renameSync(part, blob);
}

/** Points snapshots/<commit>/<name> at its blob with a relative symlink (as the Python client does). */
function linkSnapshot(storage: string, commit: string, name: string, etag: string): void {
  const pointer = path.join(storage, 'snapshots', commit, name);
  fs.mkdirSync(path.dirname(pointer), { recursive: true });
  fs.rmSync(pointer, { force: true });
  fs.symlinkSync(path.relative(path.dirname(pointer), path.join(storage, 'blobs', etag)), pointer);
}

/** The cached snapshot of `id` without any network: its directory, or an InputError saying it is not cached. */
function cachedSnapshot(id: HubId, storage: string): string {
  let commit = id.revision;
  if (!COMMIT.test(commit)) {
    const ref = path.join(storage, 'refs', id.revision);
    if (!fs.existsSync(ref)) throw new InputError(`${id.repo}@${id.revision} is not in the Hugging Face cache (${storage}); offline, nothing can be downloaded: run once without --offline / HF_HUB_OFFLINE`);
    commit = fs.readFileSync(ref, 'utf8').trim();
  }
  const dir = path.join(storage, 'snapshots', commit);
  if (!fs.existsSync(path.join(dir, 'config.json'))) throw new InputError(`${id.repo}@${commit} has no config.json in the Hugging Face cache (${dir}); run once without --offline / HF_HUB_OFFLINE to fetch it`);
  return dir;
}

/**
 * The local directory of a Hub model: its snapshot in the Hugging Face cache, with every file a
 * model needs present (downloaded now where missing). Offline, only the cache is read.
 */
export async function resolveHubModel(id: HubId, options: HubOptions = {}): Promise<string> {
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const cacheDir = options.cacheDir ?? getHFHubCachePath();
  const storage = path.join(cacheDir, getRepoFolderName({ type: 'model', name: id.repo }));
  if (options.offline ?? envFlag(process.env.HF_HUB_OFFLINE)) return cachedSnapshot(id, storage);
  const token = hubToken(options.token);
  const common = { hubUrl: endpoint, ...(token ? { accessToken: token } : {}) };
  let commit: string;
  const entries = new Map<string, ListFileEntry>();
  try {
    const info = await modelInfo({ ...common, name: id.repo, revision: id.revision, additionalFields: ['sha'] });
    commit = (info as { sha?: string }).sha ?? '';
    if (!COMMIT.test(commit)) throw new InputError(`${id.repo}@${id.revision}: the Hub gave no commit for the revision`);
    for await (const e of listFiles({ ...common, repo: { type: 'model', name: id.repo }, revision: commit, recursive: true })) {
      if (e.type === 'file') entries.set(e.path, e);
    }
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw hubError(e, id, endpoint, token);
  }
  const snapshot = path.join(storage, 'snapshots', commit);
  fs.mkdirSync(path.join(storage, 'blobs'), { recursive: true });

  const fetchFile = async (name: string): Promise<void> => {
    const entry = entries.get(name)!;
    const etag = entry.lfs?.oid ?? entry.oid ?? entry.xetHash;
    if (!etag) throw new InputError(`${id.repo}@${commit}: the Hub lists no etag for ${name}`);
    const blob = path.join(storage, 'blobs', etag);
    const report = (bytes: number) => options.onProgress?.({ file: name, bytes, totalBytes: entry.size });
    if (!(fs.existsSync(blob) && fs.statSync(blob).size === entry.size)) {
      const url = `${endpoint}/${id.repo}/resolve/${commit}/${name.split('/').map(encodeURIComponent).join('/')}`;
      try {
        await fetchBlob(url, blob, entry.size, token, report);
      } catch (e) {
        throw e instanceof InputError ? e : hubError(e, id, endpoint, token);
      }
    } else {
      report(entry.size);
    }
    linkSnapshot(storage, commit, name, etag);
  };

  if (!entries.has('config.json')) throw new InputError(`${id.repo}@${commit} has no config.json; it is not a transformers model (files: ${[...entries.keys()].slice(0, 20).join(', ')})`);
  const small = [...entries.keys()].filter(isModelFile);
  for (const name of small) await fetchFile(name);
  const weights = weightFiles(new Set(entries.keys()), () => fs.readFileSync(path.join(snapshot, INDEX_FILE), 'utf8'));
  if (weights === null) {
    throw new InputError(`${id.repo}@${commit} has no safetensors weights (${SINGLE_FILE} or ${INDEX_FILE}); intscale reads only safetensors. Its files: ${[...entries.keys()].join(', ')}`);
  }
  for (const name of weights) {
    if (!entries.has(name)) throw new InputError(`${id.repo}@${commit}: ${INDEX_FILE} names ${name}, which the repository does not have`);
    await fetchFile(name);
  }
  if (!COMMIT.test(id.revision)) {
    fs.mkdirSync(path.dirname(path.join(storage, 'refs', id.revision)), { recursive: true });
    fs.writeFileSync(path.join(storage, 'refs', id.revision), commit);
  }
  return snapshot;
}
