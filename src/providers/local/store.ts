// The embedded encrypted key-value store behind the `local` provider and the
// `secretsync store` CLI. One JSON file per entry; see FORMAT below.
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { basename, join } from 'node:path';
import { masterKeyId, open, seal, type Sealed } from '../../crypto/aead.js';
import { KeyNotFoundError, ProviderConfigError, ProviderError, type Properties } from '../provider.js';

/*
 * FORMAT (version 1). File `<hex sha256(name)>.json` in the store directory:
 *
 *   { "format": 1, "name": "db/prod",
 *     "versions": [ { "version": 1, "createdAt": "2025-…Z", "keyId": "<16 hex>",
 *                     "wrappedKey": { "iv": b64, "tag": b64, "ciphertext": b64 },
 *                     "iv": b64, "tag": b64, "ciphertext": b64 }, … ] }   // oldest first
 *
 * Each version has its own random 32-byte data key. The data key encrypts the
 * JSON of the properties; the master key wraps the data key. Both are
 * AES-256-GCM with the entry name and version number as associated data, so a
 * version copied into another entry, or renumbered, does not authenticate.
 * Names, version numbers, times and key ids are metadata, stored in plaintext.
 */
export const FORMAT = 1;
export const DEFAULT_KEEP_VERSIONS = 10;

const ENTRY_FILE = /^[0-9a-f]{64}\.json$/;
const NAME_CHARS = /^[A-Za-z0-9._/-]{1,253}$/;
const VERSION_STRING = /^[1-9][0-9]{0,15}$/;
const AAD_LABEL = 'secretsync/local/v1';

/** A name the store cannot hold; says why, and the name is not secret. */
export class InvalidEntryNameError extends Error {
  constructor(name: string, why: string) {
    super(`invalid entry name "${name}": ${why}`);
    this.name = 'InvalidEntryNameError';
  }
}

/** The master key given is not the one the store was written with: a person must supply the right key. */
export class MasterKeyMismatchError extends ProviderConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyMismatchError';
  }
}

/** The store could not be read or written, or a file failed authentication. */
export class LocalStoreError extends ProviderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LocalStoreError';
  }
}

export function validateEntryName(name: string): void {
  if (!NAME_CHARS.test(name)) {
    throw new InvalidEntryNameError(name, 'use 1 to 253 characters among A-Z a-z 0-9 . _ / -');
  }
  if (name.startsWith('/')) throw new InvalidEntryNameError(name, 'must not start with "/"');
  if (name.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new InvalidEntryNameError(name, 'no empty, "." or ".." path segments');
  }
}

export interface LocalStoreOptions {
  /** A lock file older than this is taken to belong to a crashed writer. Default 30 s. */
  lockStaleMs?: number;
  /** How long a writer waits for the lock before giving up. Default 40 s (longer than stale, so a crash heals). */
  lockTimeoutMs?: number;
  /** How long decrypted properties stay in memory for repeated reads; 0 disables. Default 5 s. */
  valueCacheTtlMs?: number;
  /**
   * Whether a write may create a missing directory. The CLI's first `put` does;
   * the operator does not, so a volume that failed to mount is an error rather
   * than a fresh empty store that a rotation would quietly start filling. Default true.
   */
  createDirectory?: boolean;
}

export interface PutOptions {
  /** Versions kept after this put, oldest pruned first. Default 10. */
  keepVersions?: number;
  /**
   * Idempotency token, kept in plaintext with the version: when the latest
   * version already carries it, nothing is written and its number is returned.
   */
  requestToken?: string;
}

export interface EntryVersion {
  version: number;
  createdAt: string;
  properties: Properties;
}

export interface EntrySummary {
  name: string;
  latestVersion: number;
  versions: number;
  updatedAt: string;
}

export interface VersionInfo {
  version: number;
  createdAt: string;
}

interface SealedJson {
  iv: string;
  tag: string;
  ciphertext: string;
}

interface StoredVersion extends SealedJson {
  version: number;
  createdAt: string;
  keyId: string;
  wrappedKey: SealedJson;
  /** The idempotency token of the put that made this version (metadata, not secret). */
  requestToken?: string;
}

interface EntryFile {
  format: typeof FORMAT;
  name: string;
  versions: StoredVersion[];
}

interface CachedFile {
  ino: number;
  mtimeMs: number;
  size: number;
  entry: EntryFile;
  /** Decrypted versions; dropped with the file when it changes on disk. */
  values: Map<number, { properties: Properties; expiresAt: number }>;
}

const MAX_CACHED_FILES = 10_000;

export class LocalStore {
  readonly keyId: string;
  private masterKey: Buffer;
  private readonly files = new Map<string, CachedFile>();
  private readonly lockStaleMs: number;
  private readonly lockTimeoutMs: number;
  private readonly valueCacheTtlMs: number;
  private readonly createDirectory: boolean;

  constructor(
    readonly dir: string,
    masterKey: Buffer,
    options: LocalStoreOptions = {},
  ) {
    this.masterKey = Buffer.from(masterKey);
    this.keyId = masterKeyId(this.masterKey);
    this.lockStaleMs = options.lockStaleMs ?? 30_000;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 40_000;
    this.valueCacheTtlMs = options.valueCacheTtlMs ?? 5_000;
    this.createDirectory = options.createDirectory ?? true;
  }

  /** Adds a version with exactly these properties. */
  async put(name: string, properties: Properties, opts: PutOptions = {}): Promise<{ version: number }> {
    return this.write(name, checkedProperties(properties), 'replace', opts);
  }

  /** Adds a version: the latest version's properties with `changes` laid over them (one read-modify-write under the lock). */
  async patch(name: string, changes: Properties, opts: PutOptions = {}): Promise<{ version: number }> {
    return this.write(name, checkedProperties(changes), 'merge', opts);
  }

  /** One version of an entry, the latest by default. */
  async get(name: string, version?: number | string): Promise<EntryVersion> {
    validateEntryName(name);
    const wanted = version === undefined ? undefined : parseVersion(name, version);
    const file = await this.readEntry(name);
    if (!file) throw new KeyNotFoundError(`entry "${name}" not found`, name);
    const stored =
      wanted === undefined ? file.entry.versions.at(-1) : file.entry.versions.find((v) => v.version === wanted);
    if (!stored) throw new KeyNotFoundError(`entry "${name}" has no version ${wanted}`, name);
    return { version: stored.version, createdAt: stored.createdAt, properties: this.decrypt(file, stored) };
  }

  /** Entries whose names start with `prefix`, sorted by name; metadata only. */
  async list(prefix = ''): Promise<EntrySummary[]> {
    const out: EntrySummary[] = [];
    for (const file of await this.readAll()) {
      const { name, versions } = file.entry;
      const latest = versions.at(-1);
      if (!latest || !name.startsWith(prefix)) continue;
      out.push({ name, latestVersion: latest.version, versions: versions.length, updatedAt: latest.createdAt });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Versions of an entry, oldest first; never values. */
  async history(name: string): Promise<VersionInfo[]> {
    validateEntryName(name);
    const file = await this.readEntry(name);
    if (!file) throw new KeyNotFoundError(`entry "${name}" not found`, name);
    return file.entry.versions.map((v) => ({ version: v.version, createdAt: v.createdAt }));
  }

  /** Removes an entry and all its versions; false when there was none. */
  async delete(name: string): Promise<boolean> {
    validateEntryName(name);
    await this.assertDirectory();
    const path = this.pathOf(name);
    return this.withLock(path, name, async () => {
      this.files.delete(path);
      try {
        await fs.unlink(path);
      } catch (err) {
        if (errno(err) === 'ENOENT') return false;
        throw new LocalStoreError(`cannot delete entry "${name}": ${describe(err)}`, { cause: err });
      }
      await this.syncDirectory();
      return true;
    });
  }

  /**
   * Throws unless every entry's latest version was written with this master key.
   * An empty store passes: there is nothing the key could fail to open.
   */
  async verifyMasterKey(): Promise<void> {
    for (const file of await this.readAll()) this.assertKeyId(file.entry.name, file.entry.versions.at(-1));
  }

  /** Forgets cached plaintext and the master key; the store is unusable afterwards. */
  close(): void {
    this.files.clear();
    this.masterKey.fill(0);
    this.masterKey = Buffer.alloc(0);
  }

  // --- writing -------------------------------------------------------------

  private async write(
    name: string,
    properties: Properties,
    mode: 'replace' | 'merge',
    opts: PutOptions,
  ): Promise<{ version: number }> {
    validateEntryName(name);
    const keep = opts.keepVersions ?? DEFAULT_KEEP_VERSIONS;
    if (!Number.isSafeInteger(keep) || keep < 1) throw new Error('keepVersions must be a whole number of at least 1');
    this.assertOpen();
    await this.ensureDirectory();
    const path = this.pathOf(name);
    return this.withLock(path, name, async () => {
      await this.removeLeftoverTempFiles(path);
      // Read afresh under the lock: the cache may predate another process's put.
      this.files.delete(path);
      const file = await this.readEntry(name);
      const latest = file?.entry.versions.at(-1);
      if (latest) this.assertKeyId(name, latest);
      else await this.assertKeyMatchesSomeEntry();
      // A retry of a put that already landed (same token): the version it made, nothing new.
      if (opts.requestToken !== undefined && latest?.requestToken === opts.requestToken)
        return { version: latest.version };
      const merged = mode === 'merge' && file && latest ? { ...this.decrypt(file, latest), ...properties } : properties;
      const version = (latest?.version ?? 0) + 1;
      const stored = this.encrypt(name, version, merged);
      if (opts.requestToken !== undefined) stored.requestToken = opts.requestToken;
      const versions = [...(file?.entry.versions ?? []), stored].slice(-keep);
      const entry: EntryFile = { format: FORMAT, name, versions };
      await this.writeAtomically(path, `${JSON.stringify(entry, null, 2)}\n`);
      return { version };
    });
  }

  private encrypt(name: string, version: number, properties: Properties): StoredVersion {
    const dataKey = randomBytes(32);
    const plaintext = Buffer.from(JSON.stringify(properties), 'utf8');
    try {
      const wrapped = seal(this.masterKey, dataKey, aad('key', name, version));
      const data = seal(dataKey, plaintext, aad('data', name, version));
      return {
        version,
        createdAt: new Date().toISOString(),
        keyId: this.keyId,
        wrappedKey: toJson(wrapped),
        ...toJson(data),
      };
    } finally {
      dataKey.fill(0);
      plaintext.fill(0);
    }
  }

  /** Temp file in the same directory, fsync, rename over the target, fsync the directory: a crash leaves the old or the new file, never a torn one. */
  private async writeAtomically(path: string, content: string): Promise<void> {
    const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const handle = await fs.open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(content, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, path);
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw new LocalStoreError(`cannot write to local store directory ${this.dir}: ${describe(err)}`, { cause: err });
    }
    this.files.delete(path);
    await this.syncDirectory();
  }

  private async syncDirectory(): Promise<void> {
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(this.dir, fsConstants.O_RDONLY);
      await handle.sync();
    } catch (err) {
      // Some platforms and filesystems cannot fsync a directory; the rename is still atomic there.
      if (!['EINVAL', 'EISDIR', 'EPERM', 'ENOTSUP', 'EBADF'].includes(errno(err) ?? '')) {
        throw new LocalStoreError(`cannot sync local store directory ${this.dir}: ${describe(err)}`, { cause: err });
      }
    } finally {
      await handle?.close();
    }
  }

  /** Only ever called under the entry's lock, so no live writer owns these temp files. */
  private async removeLeftoverTempFiles(path: string): Promise<void> {
    const base = basename(path);
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const n of names) {
      if (n.startsWith(`${base}.`) && n.endsWith('.tmp')) await fs.rm(join(this.dir, n), { force: true });
    }
  }

  /**
   * A lock file per entry, created exclusively. A writer that crashed leaves it
   * behind; after `lockStaleMs` it is taken over. Writes hold it for
   * milliseconds, so a lock that old cannot belong to a live writer.
   */
  private async withLock<T>(path: string, name: string, fn: () => Promise<T>): Promise<T> {
    const lock = `${path}.lock`;
    const deadline = Date.now() + this.lockTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await fs.open(lock, 'wx', 0o600);
        await handle.writeFile(`${process.pid} ${new Date().toISOString()}\n`);
        await handle.close();
        break;
      } catch (err) {
        if (errno(err) !== 'EEXIST') {
          throw new LocalStoreError(`cannot lock entry "${name}" in ${this.dir}: ${describe(err)}`, { cause: err });
        }
      }
      const stat = await fs.stat(lock).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > this.lockStaleMs) {
        await fs.rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new LocalStoreError(
          `entry "${name}" is locked by another writer (${lock}); retry, or remove the lock file if no writer is running`,
        );
      }
      await sleep(Math.min(100, 5 * 2 ** Math.min(attempt, 5)) + Math.random() * 10);
    }
    try {
      return await fn();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }

  // --- reading -------------------------------------------------------------

  private pathOf(name: string): string {
    return join(this.dir, `${createHash('sha256').update(name, 'utf8').digest('hex')}.json`);
  }

  /** The parsed file of an entry, or undefined when there is none; cached while the file is unchanged. */
  private async readEntry(name: string): Promise<CachedFile | undefined> {
    const file = await this.readFile(this.pathOf(name));
    if (file === undefined) {
      await this.assertDirectory();
      return undefined;
    }
    if (file.entry.name !== name) {
      throw new LocalStoreError(`entry file for "${name}" holds entry "${file.entry.name}"; it was moved or replaced`);
    }
    return file;
  }

  private async readFile(path: string): Promise<CachedFile | undefined> {
    this.assertOpen();
    let stat: Stats;
    try {
      stat = await fs.stat(path);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') {
        this.files.delete(path);
        return undefined;
      }
      throw this.unreadable(err);
    }
    const cached = this.files.get(path);
    if (cached && sameFile(cached, stat)) {
      // Re-insert to keep the Map in least-recently-used order for eviction.
      this.files.delete(path);
      this.files.set(path, cached);
      return cached;
    }
    // Stat the open file rather than reuse `stat`: the file may have been replaced in between.
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw this.unreadable(err);
    }
    let text: string;
    let fstat: Stats;
    try {
      fstat = await handle.stat();
      text = await handle.readFile('utf8');
    } catch (err) {
      throw this.unreadable(err);
    } finally {
      await handle.close();
    }
    const entry = parseEntryFile(path, text);
    const fresh: CachedFile = { ino: fstat.ino, mtimeMs: fstat.mtimeMs, size: fstat.size, entry, values: new Map() };
    this.files.delete(path);
    this.files.set(path, fresh);
    if (this.files.size > MAX_CACHED_FILES) {
      const oldest = this.files.keys().next();
      if (!oldest.done) this.files.delete(oldest.value);
    }
    return fresh;
  }

  private async readAll(): Promise<CachedFile[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      throw this.unreadable(err);
    }
    const out: CachedFile[] = [];
    // Temp files and locks are skipped by name: only renamed, complete files count.
    for (const n of names.filter((x) => ENTRY_FILE.test(x))) {
      const file = await this.readFile(join(this.dir, n));
      if (file) out.push(file);
    }
    return out;
  }

  private decrypt(file: CachedFile, stored: StoredVersion): Properties {
    const name = file.entry.name;
    const now = Date.now();
    const hit = file.values.get(stored.version);
    if (hit && hit.expiresAt > now) return { ...hit.properties };
    this.assertKeyId(name, stored);
    let dataKey: Buffer | undefined;
    let plaintext: Buffer | undefined;
    try {
      dataKey = open(this.masterKey, fromJson(stored.wrappedKey), aad('key', name, stored.version));
      plaintext = open(dataKey, fromJson(stored), aad('data', name, stored.version));
    } catch {
      throw new LocalStoreError(
        `entry "${name}" version ${stored.version} failed authentication: its file was modified, or versions or files were swapped`,
      );
    } finally {
      dataKey?.fill(0);
    }
    let properties: Properties;
    try {
      properties = checkedProperties(JSON.parse(plaintext.toString('utf8')) as unknown);
    } catch {
      throw new LocalStoreError(`entry "${name}" version ${stored.version} does not hold a JSON object of strings`);
    } finally {
      plaintext.fill(0);
    }
    if (this.valueCacheTtlMs > 0) {
      file.values.set(stored.version, { properties, expiresAt: now + this.valueCacheTtlMs });
    }
    return { ...properties };
  }

  private assertKeyId(name: string, stored: StoredVersion | undefined): void {
    if (stored && stored.keyId !== this.keyId) {
      throw new MasterKeyMismatchError(
        `the master key does not match the store: entry "${name}" version ${stored.version} was written with master key id ${stored.keyId}, the key given has id ${this.keyId}`,
      );
    }
  }

  /** A new entry must not start a second key in a store: a mistyped key would otherwise split it silently. */
  private async assertKeyMatchesSomeEntry(): Promise<void> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const n of names) {
      if (!ENTRY_FILE.test(n)) continue;
      const file = await this.readFile(join(this.dir, n));
      if (file) {
        this.assertKeyId(file.entry.name, file.entry.versions.at(-1));
        return;
      }
    }
  }

  private async assertDirectory(): Promise<void> {
    try {
      const stat = await fs.stat(this.dir);
      if (!stat.isDirectory()) throw new Error('not a directory');
      await fs.access(this.dir, fsConstants.R_OK | fsConstants.X_OK);
    } catch (err) {
      throw this.unreadable(err);
    }
  }

  private async ensureDirectory(): Promise<void> {
    if (!this.createDirectory) return this.assertDirectory();
    try {
      await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new LocalStoreError(`cannot create local store directory ${this.dir}: ${describe(err)}`, { cause: err });
    }
  }

  private unreadable(err: unknown): LocalStoreError {
    return new LocalStoreError(`local store directory ${this.dir} does not exist or is unreadable (${describe(err)})`, {
      cause: err,
    });
  }

  private assertOpen(): void {
    if (this.masterKey.length === 0) throw new Error('the local store was closed');
  }
}

function aad(purpose: 'key' | 'data', name: string, version: number): Buffer {
  // NUL never occurs in a valid name, so the encoding is unambiguous.
  return Buffer.from(`${AAD_LABEL}\0${purpose}\0${name}\0${version}`, 'utf8');
}

function parseVersion(name: string, version: number | string): number {
  const n = typeof version === 'number' ? version : VERSION_STRING.test(version) ? Number(version) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new KeyNotFoundError(`entry "${name}" has no version "${version}" (versions are numbers 1, 2, 3, …)`, name);
  }
  return n;
}

/** Copies into a fresh object (an own `__proto__` key stays data) and insists on string values. */
function checkedProperties(value: unknown): Properties {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('properties must be a JSON object of string values');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (k === '') throw new Error('property names must not be empty');
    if (typeof v !== 'string') throw new Error(`property "${k}" must be a string`);
  }
  return Object.fromEntries(entries) as Properties;
}

function parseEntryFile(path: string, text: string): EntryFile {
  const corrupt = (why: string) => new LocalStoreError(`entry file ${path} is not a valid local store file: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw corrupt('not JSON');
  }
  if (!isObject(raw)) throw corrupt('not an object');
  if (raw.format !== FORMAT) throw corrupt(`unsupported format ${JSON.stringify(raw.format)} (expected ${FORMAT})`);
  if (typeof raw.name !== 'string') throw corrupt('no name');
  if (!Array.isArray(raw.versions) || raw.versions.length === 0) throw corrupt('no versions');
  let previous = 0;
  for (const v of raw.versions as unknown[]) {
    if (
      !isObject(v) ||
      typeof v.version !== 'number' ||
      !Number.isSafeInteger(v.version) ||
      v.version <= previous ||
      typeof v.createdAt !== 'string' ||
      typeof v.keyId !== 'string' ||
      !isSealedJson(v.wrappedKey) ||
      !isSealedJson(v)
    ) {
      throw corrupt('a version is malformed or out of order');
    }
    previous = v.version;
  }
  return raw as unknown as EntryFile;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSealedJson(v: unknown): v is SealedJson {
  return isObject(v) && typeof v.iv === 'string' && typeof v.tag === 'string' && typeof v.ciphertext === 'string';
}

function toJson(s: Sealed): SealedJson {
  return { iv: s.iv.toString('base64'), tag: s.tag.toString('base64'), ciphertext: s.ciphertext.toString('base64') };
}

function fromJson(s: SealedJson): Sealed {
  return {
    iv: Buffer.from(s.iv, 'base64'),
    tag: Buffer.from(s.tag, 'base64'),
    ciphertext: Buffer.from(s.ciphertext, 'base64'),
  };
}

function sameFile(cached: CachedFile, stat: Stats): boolean {
  return cached.ino === stat.ino && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size;
}

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

/** A filesystem error as one line: its code or message, which name paths but never contents. */
function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
