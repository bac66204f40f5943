// Vault's KV secrets engine, versions 1 and 2, as the provider contract sees
// it: an entry is a path inside the mount whose fields are the properties;
// `find` lists a path prefix recursively; rotation writes a new KV v2 version
// with check-and-set, exactly once per request token.
//
// Exactly once across crashes and writers, without putting anything into the
// entry's data: before writing, the rotation records its token and the version
// it builds on (`base`) in the entry's custom_metadata, then writes with
// `cas = base`. Check-and-set lets exactly one write land on any base, so the
// version after `base` is the one rotation for it. A retry with the same token
// finds its record: if the entry has moved past `base`, that rotation happened
// (its own write, or a concurrent writer's that won the race: either way one
// new version, and the Secret is then synced from the store) and its version
// is returned; if not, it writes again with the same `cas`. A second writer
// with another token that read the same base loses the check-and-set and,
// retried, finds the entry past its base: it reports the winner's version and
// writes nothing.
import { SecretsyncError, SpecError, boundedText } from '../../api/errors.js';
import { LimitReasons, tooManyEntries } from '../../api/limits.js';
import { LimitError } from '../../api/errors.js';
import type { FindSpec, RemoteRef } from '../../api/types.js';
import { compileNamePattern } from '../../secrets/pattern.js';
import { selectProperty } from '../aws/values.js';
import {
  KeyNotFoundError,
  ProviderError,
  type CallOptions,
  type FindOptions,
  type Properties,
  type PutValueOptions,
  type WriteRef,
} from '../provider.js';
import { VaultNotFoundError, VaultReasons, VaultRequestError } from './errors.js';
import { encodePath, type VaultHttp } from './http.js';

/** custom_metadata keys of rotation records start with this. */
export const ROTATION_RECORD_PREFIX = 'secretsync-rotation-';
/** Rotation records kept per entry (Vault allows 64 custom_metadata keys; the newest are kept). */
export const MAX_ROTATION_RECORDS = 8;
/** Names listed in one `find`, matching or not, before it stops (a walk over a huge tree for a narrow pattern). */
export const MAX_LISTED_NAMES = 20_000;
/** LIST requests in flight during one `find`. */
const LIST_CONCURRENCY = 4;

/** A pinned version that is not there (never written, deleted, destroyed): its own reason, never "key not found". */
export class VersionNotFoundError extends SecretsyncError {
  constructor(message: string) {
    // Transient: a deleted version can be undeleted. Not a KeyNotFoundError, so deletionPolicy never removes keys for it.
    super(VaultReasons.VersionNotFound, 'transient', message);
    this.name = 'VersionNotFoundError';
  }
}

interface KvV2Read {
  data?: {
    data?: Record<string, unknown> | null;
    metadata?: { version?: unknown; deletion_time?: unknown; destroyed?: unknown } | null;
  } | null;
}

interface KvV2Metadata {
  data?: {
    current_version?: unknown;
    custom_metadata?: Record<string, string> | null;
    versions?: Record<string, { deletion_time?: unknown; destroyed?: unknown }> | null;
  } | null;
}

interface KvList {
  data?: { keys?: unknown } | null;
}

export interface KvOptions {
  /** Mount path (default `secret`). */
  mount: string;
  version: 'v1' | 'v2';
  /** `storeLabel(store)`, for messages. */
  store: string;
}

/** A property value as a Secret value: strings as they are, anything else as JSON. */
function asText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A remoteRef key as a path inside the mount: no leading or trailing slash, no empty, `.` or `..` segments. */
export function entryPath(key: string): string {
  const path = key.replace(/^\/+/, '');
  const segments = path.split('/');
  if (path === '' || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new SpecError(`Vault key "${boundedText(key, 200)}" is not a path inside the KV mount (such as app/db)`);
  }
  return path;
}

function parseVersion(version: string | undefined, kv: 'v1' | 'v2', key: string): number | undefined {
  if (version === undefined || version === '') return undefined;
  if (kv === 'v1')
    throw new SpecError(`"${key}": version ${boundedText(version, 40)} is pinned, but a KV v1 mount has no versions`);
  if (!/^[1-9][0-9]{0,17}$/.test(version)) {
    throw new SpecError(`"${key}": version "${boundedText(version, 40)}" is not a KV v2 version number (1, 2, …)`);
  }
  return Number(version);
}

/** KV operations of one store. */
export class VaultKv {
  constructor(
    private readonly http: VaultHttp,
    private readonly options: KvOptions,
  ) {}

  private get mount(): string {
    return encodePath(this.options.mount);
  }

  /** The fields of an entry (at a version, on KV v2). */
  async read(key: string, version: string | undefined, opts: CallOptions): Promise<Record<string, unknown>> {
    const path = entryPath(key);
    const pinned = parseVersion(version, this.options.version, key);
    const where = `${this.options.store}: "${key}"`;
    if (this.options.version === 'v1') {
      const answer = await this.http.request<{ data?: Record<string, unknown> | null }>(
        'GET',
        `v1/${this.mount}/${encodePath(path)}`,
        { ...opts, operation: 'kv.read', key },
      );
      return answer.data ?? {};
    }
    try {
      const answer = await this.http.request<KvV2Read>('GET', `v1/${this.mount}/data/${encodePath(path)}`, {
        ...opts,
        operation: 'kv.read',
        key,
        ...(pinned !== undefined ? { query: { version: pinned } } : {}),
      });
      const data = answer.data?.data;
      if (data === null || data === undefined) {
        // Answered without data: the version is deleted (soft) or destroyed.
        throw this.versionGone(where, pinned, answer.data?.metadata ?? undefined);
      }
      return data;
    } catch (err) {
      if (!(err instanceof VaultNotFoundError)) throw err;
      const metadata = (err.body as KvV2Read['data'])?.metadata;
      if (metadata) throw this.versionGone(where, pinned, metadata);
      if (pinned === undefined) throw new KeyNotFoundError(`${where} not found in Vault`, key);
      // A pinned version that Vault does not know: the path may exist (VersionNotFound) or not (KeyNotFound).
      if (await this.exists(path, opts)) {
        throw new VersionNotFoundError(`${where}: version ${pinned} does not exist in Vault`);
      }
      throw new KeyNotFoundError(`${where} not found in Vault`, key);
    }
  }

  private versionGone(
    where: string,
    pinned: number | undefined,
    metadata: { version?: unknown; deletion_time?: unknown; destroyed?: unknown } | undefined,
  ): SecretsyncError {
    const v = typeof metadata?.version === 'number' ? metadata.version : pinned;
    const how = metadata?.destroyed === true ? 'destroyed' : 'deleted';
    if (pinned === undefined) {
      // The current version is deleted: to a ManagedSecret the entry is gone (as with the other providers).
      return new KeyNotFoundError(`${where}: its current version${v !== undefined ? ` (${v})` : ''} is ${how}`, where);
    }
    return new VersionNotFoundError(`${where}: version ${v ?? pinned} is ${how}`);
  }

  /** Whether the KV v2 path has metadata (exists, in any version). */
  private async exists(path: string, opts: CallOptions): Promise<boolean> {
    try {
      await this.http.request('GET', `v1/${this.mount}/metadata/${encodePath(path)}`, {
        ...opts,
        operation: 'kv.metadata',
        key: path,
      });
      return true;
    } catch (err) {
      if (err instanceof KeyNotFoundError) return false;
      throw err;
    }
  }

  async getValue(ref: RemoteRef, opts: CallOptions): Promise<string> {
    const data = await this.read(ref.key, ref.version, opts);
    const where = `${this.options.store}: "${ref.key}"${ref.version ? ` version ${ref.version}` : ''}`;
    if (ref.property !== undefined) {
      if (Object.hasOwn(data, ref.property)) return asText(data[ref.property]);
      return selectProperty(JSON.stringify(data), ref.property, where, ref.key);
    }
    const fields = Object.keys(data);
    if (fields.length === 1) return asText(data[fields[0] as string]);
    return JSON.stringify(data);
  }

  async getProperties(key: string, version: string | undefined, opts: CallOptions): Promise<Properties> {
    const data = await this.read(key, version, opts);
    const out: Properties = {};
    for (const [k, v] of Object.entries(data)) out[k] = asText(v);
    return out;
  }

  /** One directory's names (`a`, `dir/`); an empty or missing directory is none (Vault answers LIST with 404). */
  private async list(dir: string, opts: CallOptions): Promise<string[]> {
    const where = this.options.version === 'v2' ? `v1/${this.mount}/metadata/` : `v1/${this.mount}/`;
    try {
      const answer = await this.http.request<KvList>('LIST', `${where}${encodePath(dir)}`, {
        ...opts,
        operation: 'kv.list',
        key: dir,
      });
      const keys = answer.data?.keys;
      return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string' && k !== '') : [];
    } catch (err) {
      if (err instanceof KeyNotFoundError) return [];
      throw err;
    }
  }

  /** Paths under `prefix` (recursively) whose full path matches `nameRegexp`: path → properties. */
  async find(query: FindSpec, opts: FindOptions): Promise<Map<string, Properties>> {
    if (query.tags !== undefined && Object.keys(query.tags).length > 0) {
      throw new SpecError(
        `${this.options.store}: dataFrom.find.tags is not supported by Vault stores (use prefix or nameRegexp)`,
      );
    }
    const prefix = (query.prefix ?? '').replace(/^\/+/, '');
    const pattern = query.nameRegexp !== undefined ? compileNamePattern(query.nameRegexp) : undefined;
    const max = opts.maxEntries;
    const matched: string[] = [];
    let listed = 0;
    // Directories to list, from the prefix's own directory down.
    const queue: string[] = [prefix.slice(0, prefix.lastIndexOf('/') + 1)];
    while (queue.length > 0) {
      const batch = queue.splice(0, LIST_CONCURRENCY);
      const answers = await Promise.all(batch.map((dir) => this.list(dir, opts)));
      batch.forEach((dir, i) => {
        for (const name of answers[i] ?? []) {
          const full = `${dir}${name}`;
          listed += 1;
          if (name.endsWith('/')) {
            // Descend only where names under the prefix can be.
            if (full.startsWith(prefix) || prefix.startsWith(full)) queue.push(full);
            continue;
          }
          if (!full.startsWith(prefix)) continue;
          if (pattern && !pattern.test(full)) continue;
          matched.push(full);
          if (max !== undefined && matched.length > max) throw tooManyEntries(max, query);
        }
      });
      if (listed > MAX_LISTED_NAMES) {
        throw new LimitError(
          LimitReasons.TooManyEntries,
          `${this.options.store}: dataFrom.find listed more than ${MAX_LISTED_NAMES} names under "${boundedText(prefix, 100)}"; narrow the prefix`,
          'transient',
        );
      }
    }
    const out = new Map<string, Properties>();
    for (let i = 0; i < matched.length; i += LIST_CONCURRENCY) {
      const names = matched.slice(i, i + LIST_CONCURRENCY);
      const values = await Promise.all(
        names.map(async (name) => {
          try {
            return await this.getProperties(name, undefined, opts);
          } catch (err) {
            // Deleted between list and read: absent, as if the search had run a moment later.
            if (err instanceof KeyNotFoundError) return undefined;
            throw err;
          }
        }),
      );
      names.forEach((name, j) => {
        const v = values[j];
        if (v !== undefined) out.set(name, v);
      });
    }
    return out;
  }

  /** Rotation write-back (KV v2 only): see the file comment for the exactly-once protocol. */
  async putValue(ref: WriteRef, value: string | Properties, opts: PutValueOptions): Promise<{ version: string }> {
    const where = `${this.options.store}: "${ref.key}"`;
    if (this.options.version !== 'v2') {
      throw new SpecError(
        `${where}: rotation writes need a KV v2 mount (this store is KV v1, which keeps no versions)`,
      );
    }
    const path = entryPath(ref.key);
    // Writes go to the primary address only: a DR secondary must not fork the entry.
    const call = { signal: opts.signal, tenant: opts.tenant, primaryOnly: true } as const;
    const recordKey = `${ROTATION_RECORD_PREFIX}${opts.requestToken}`;
    if (!/^[A-Za-z0-9-]{1,64}$/.test(opts.requestToken)) {
      throw new ProviderError(`${where}: the rotation request token is not a UUID`);
    }
    const meta = await this.metadata(path, call);
    const current = meta ? Number(meta.data?.current_version ?? 0) : 0;
    const custom = meta?.data?.custom_metadata ?? {};
    const recorded = custom[recordKey];
    let base: number;
    if (recorded !== undefined && /^base=\d+$/.test(recorded)) {
      base = Number(recorded.slice('base='.length));
      // The entry moved past the base this rotation built on: exactly one write landed on it (check-and-set).
      if (current > base) return { version: String(base + 1) };
    } else {
      base = current;
      // A new entry: its metadata is made first, without custom_metadata (which would replace another writer's records).
      if (!meta) await this.createMetadata(path, call);
      // A merge patch: concurrent writers each add their own record, none overwrites another's.
      await this.patchMetadata(path, { ...staleRecords(custom), [recordKey]: `base=${base}` }, call);
    }
    const fields = await this.merged(ref, value, path, base, call);
    try {
      const answer = await this.http.request<{ data?: { version?: unknown } | null }>(
        'POST',
        `v1/${this.mount}/data/${encodePath(path)}`,
        { ...call, operation: 'kv.write', key: ref.key, body: { options: { cas: base }, data: fields } },
      );
      const version = answer.data?.version;
      return { version: String(typeof version === 'number' ? version : base + 1) };
    } catch (err) {
      if (err instanceof VaultRequestError && err.vaultErrors.some((e) => /check-and-set/i.test(e))) {
        // Another writer landed on this base first: that is this base's one rotation. Retried, this finds it.
        throw new ProviderError(`${where}: another writer changed the entry first (check-and-set); retrying`, {
          retryAfterMs: 1000,
        });
      }
      throw err;
    }
  }

  /** The fields to write: the new value laid over the base version's fields (not the current ones: check-and-set). */
  private async merged(
    ref: WriteRef,
    value: string | Properties,
    path: string,
    base: number,
    call: CallOptions,
  ): Promise<Record<string, unknown>> {
    if (typeof value === 'string' && ref.property === undefined) {
      // A whole value written into a KV entry: a JSON object is its fields, anything else one field `value`.
      try {
        const parsed: unknown = JSON.parse(value);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
          return parsed as Record<string, unknown>;
      } catch {
        // Not JSON: one field.
      }
      return { value };
    }
    const changes = typeof value === 'string' ? { [ref.property as string]: value } : value;
    let current: Record<string, unknown> = {};
    if (base > 0) {
      try {
        current = await this.read(path, String(base), call);
      } catch (err) {
        if (!(err instanceof KeyNotFoundError) && !(err instanceof VersionNotFoundError)) throw err;
      }
    }
    return { ...current, ...changes };
  }

  private async metadata(path: string, call: CallOptions): Promise<KvV2Metadata | undefined> {
    try {
      return await this.http.request<KvV2Metadata>('GET', `v1/${this.mount}/metadata/${encodePath(path)}`, {
        ...call,
        operation: 'kv.metadata',
        key: path,
      });
    } catch (err) {
      if (err instanceof KeyNotFoundError) return undefined;
      throw err;
    }
  }

  private async createMetadata(path: string, call: CallOptions): Promise<void> {
    await this.http.request('POST', `v1/${this.mount}/metadata/${encodePath(path)}`, {
      ...call,
      operation: 'kv.metadata.write',
      key: path,
      // An empty body makes nothing; max_versions 0 (the mount's default) makes the metadata and changes nothing.
      body: { max_versions: 0 },
    });
  }

  private async patchMetadata(path: string, custom: Record<string, string | null>, call: CallOptions): Promise<void> {
    await this.http.request('PATCH', `v1/${this.mount}/metadata/${encodePath(path)}`, {
      ...call,
      operation: 'kv.metadata.write',
      key: path,
      contentType: 'application/merge-patch+json',
      body: { custom_metadata: custom },
    });
  }
}

/** A merge patch that removes our oldest rotation records, keeping the newest MAX_ROTATION_RECORDS - 1 (and every key that is not ours). */
function staleRecords(custom: Record<string, string>): Record<string, null> {
  const ours = Object.entries(custom).filter(([k]) => k.startsWith(ROTATION_RECORD_PREFIX));
  const sorted = ours.sort((a, b) => baseOf(b[1]) - baseOf(a[1]));
  return Object.fromEntries(sorted.slice(MAX_ROTATION_RECORDS - 1).map(([k]) => [k, null]));
}

function baseOf(record: string): number {
  const m = /^base=(\d+)$/.exec(record);
  return m ? Number(m[1]) : -1;
}
