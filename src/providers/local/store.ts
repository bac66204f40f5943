// The embedded encrypted key-value store behind the `local` provider and the
// `secretsync store` CLI. One JSON file per entry plus a store-wide manifest
// that pins each entry's latest state, so that putting back an older copy of
// an entry file is detected; see FORMAT below and docs/local-store.md.
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { SecretsyncError } from '../../api/errors.js';
import { masterKeyId, open, seal, type Sealed } from '../../crypto/aead.js';
import { KeyNotFoundError, ProviderConfigError, ProviderError, type Properties } from '../provider.js';

/*
 * FORMAT (version 2). File `<hex sha256(name)>.json` in the store directory:
 *
 *   { "format": 2, "name": "db/prod", "generation": 7,
 *     "versions": [ { "version": 1, "createdAt": "2025-…Z", "keyId": "<16 hex>",
 *                     "wrappedKey": { "iv": b64, "tag": b64, "ciphertext": b64 },
 *                     "iv": b64, "tag": b64, "ciphertext": b64 }, … ],   // oldest first
 *     "mac": b64 }
 *
 * Each version has its own random 32-byte data key. The data key encrypts the
 * JSON of the properties; the master key wraps the data key. Both are
 * AES-256-GCM with the entry name and version number as associated data, so a
 * version copied into another entry, or renumbered, does not authenticate.
 *
 * `generation` grows by one with every write of the entry (and goes on past a
 * delete). `mac` is HMAC-SHA256, under a key derived from the master key with
 * HKDF, over the name, the generation and the ordered list of (version,
 * createdAt, keyId, requestToken, sha256 of the sealed fields): a dropped,
 * reordered or edited version, or an edited generation, does not authenticate.
 *
 * `manifest.json` (MACed under the same key) records every entry's latest
 * generation and the sha256 of its file, and a tombstone for deleted entries:
 * a whole older entry file (validly MACed) is caught there. Writes go entry
 * file first, manifest second, so a crash in between leaves an entry *ahead*
 * of the manifest, which is accepted; an entry behind it never is.
 *
 * A store of many entries does not rewrite the whole manifest on every write:
 * `manifest.journal` holds one line per record changed since manifest.json
 * was written, `{ "counter", "name", "generation", "digest" | "deleted", "mac" }`,
 * each MAC chained to the one before it (the first to manifest.json's own
 * mac), its counter one more than the line before. Readers apply the lines to
 * manifest.json, reading only what was appended since they last looked, so a
 * write and a re-read cost the same at 100 entries as at 100,000. When the
 * journal grows past a quarter of the store, a writer folds it into a new
 * manifest.json and removes it; a journal left behind by a crash in between
 * no longer chains to manifest.json and holds no counter above it, and is
 * ignored. An edited or reordered line fails its MAC; lines cut off the end
 * are a rollback, which, as for an older manifest.json, this process catches by
 * its counter and other processes by no entry file ever being behind.
 *
 * Format 1 (before the manifest) had no generation or mac. Such files are read
 * as before; the first write to a store creates the manifest, pinning every
 * format-1 file by its sha256, and each entry is rewritten in format 2 on its
 * next write (or by `secretsync store reseal`).
 *
 * Names, version numbers, times, generations and key ids are metadata, stored
 * in plaintext.
 */
export const FORMAT = 2;
/** Entry files written before the manifest existed. */
export const LEGACY_FORMAT = 1;
export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_JOURNAL_FILE = 'manifest.journal';
export const DEFAULT_KEEP_VERSIONS = 10;

const ENTRY_FILE = /^[0-9a-f]{64}\.json$/;
const NAME_CHARS = /^[A-Za-z0-9._/-]{1,253}$/;
const VERSION_STRING = /^[1-9][0-9]{0,15}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** A master key id (masterKeyId): 16 hex characters. */
const KEY_ID = /^[0-9a-f]{16}$/;
/** An HMAC-SHA256 in canonical base64, as hmac() writes it. */
const MAC_BASE64 = /^[A-Za-z0-9+/]{43}=$/;
const AAD_LABEL = 'secretsync/local/v1';
const MAC_KEY_SALT = 'secretsync/local';
const MAC_KEY_INFO = 'secretsync/local/v2 mac key';
const ENTRY_MAC_LABEL = 'secretsync/local/v2 entry';
const MANIFEST_MAC_LABEL = 'secretsync/local/v2 manifest';
const JOURNAL_MAC_LABEL = 'secretsync/local/v2 manifest journal';
/**
 * Below this many entries every write rewrites manifest.json (small enough
 * that the journal would save nothing); the journal is folded into it once it
 * holds more lines than this or a quarter of the entries, whichever is more.
 */
const DEFAULT_JOURNAL_MIN_ENTRIES = 512;
/** How many takers in a row may crash while taking over one stale lock before a writer gives up on it. */
const MAX_TAKEOVER_LEVELS = 8;
/** Highest generations remembered per entry name (one number each). */
const MAX_REMEMBERED_GENERATIONS = 100_000;

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

/** The store could not be read or written, or a file is not a store file. Retried: the disk may come back. */
export class LocalStoreError extends ProviderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LocalStoreError';
  }
}

/**
 * A file of the store failed authentication or is older than the store
 * recorded: it was edited, swapped, or rolled back to an older copy. Only a
 * person can decide which copy is right, so it is terminal. The message names
 * the entry and generations, never a value.
 */
export class StoreTamperedError extends SecretsyncError {
  constructor(
    message: string,
    /** The entry concerned; undefined when the manifest itself is. */
    readonly entry?: string,
  ) {
    super('StoreTampered', 'terminal', message);
    this.name = 'StoreTamperedError';
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
  /** A lock file untouched for this long is taken to belong to a crashed writer. Default 30 s. */
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
  /**
   * Stores with at least this many entries record writes in manifest.journal
   * rather than rewriting manifest.json (see FORMAT); also the fewest journal
   * lines that are folded into manifest.json. Default 512; tests lower it.
   */
  journalMinEntries?: number;
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

export interface ResealOptions {
  /**
   * Accept the entry as it is on disk even where it fails the rollback checks
   * (an older copy put back on purpose, a manifest removed); every version
   * must still decrypt. Without it, only format-1 entries are rewritten.
   */
  accept?: boolean;
}

export interface ResealResult {
  name: string;
  /** `upgraded`: was format 1; `accepted`: failed a check and was accepted; `current`: nothing to do. */
  outcome: 'upgraded' | 'accepted' | 'current';
  generation: number;
  /** For `accepted`: what the check said. */
  problem?: string;
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
  format: typeof FORMAT | typeof LEGACY_FORMAT;
  name: string;
  /** 0 for a format-1 file. */
  generation: number;
  versions: StoredVersion[];
  /** Format 2 only. */
  mac?: string;
}

/**
 * What says that a file on disk is the one read before. Inode, mtime and size
 * alone do not: a file replaced by rename often gets the freed inode number
 * back, file times come from a coarse clock (one tick is 1–10 ms), and a new
 * version of the same length is common (a rotated password, a manifest whose
 * counter went from 965 to 966). So a read is trusted only when it was made
 * well after the file's mtime (see RACY_WINDOW_MS), as git does for its index.
 */
interface FileIdentity {
  ino: number;
  mtimeMs: number;
  size: number;
  /** Date.now() when the stat that preceded the read began. */
  readAt: number;
}

/**
 * A file read less than this long after its mtime is read again next time
 * (and its bytes compared with what was read): a later write within the same
 * clock tick could leave the same inode, mtime and size.
 */
const RACY_WINDOW_MS = 1_000;

/**
 * The manifest (about 100 bytes per entry) is read before every entry; while
 * it is racy, its bytes are compared at most this often rather than on every
 * read, so a store being written to does not cost a full read and hash of it
 * per get. A manifest a moment old is safe: an entry ahead of the manifest reads
 * fine (it is what a crash between the two writes leaves); an entry behind it
 * is what rollback detection refuses, and entries are always compared.
 */
const MANIFEST_RECHECK_MS = 100;

/**
 * A reader (no lock held) uses the manifest it looked at less than this long
 * ago without a stat of manifest.json and its journal: a get stats only its
 * entry file. Safe for the reason above (entries are always compared, and an
 * older manifest only lets an entry be ahead of it); writers and the change
 * watcher always look.
 */
const MANIFEST_FRESH_MS = 100;

interface CachedFile extends FileIdentity {
  entry: EntryFile;
  /** sha256 (hex) of the file's bytes, as the manifest records it. */
  digest: string;
  /** Name, key id and MAC were checked (once per parsed file). */
  checked: boolean;
  /** Decrypted versions; dropped with the file when it changes on disk. */
  values: Map<number, { properties: Properties; expiresAt: number }>;
}

/** What the manifest says of one entry. */
interface ManifestRecord {
  generation: number;
  /** sha256 (hex) of the entry file written at `generation`; absent for a tombstone. */
  digest?: string;
  /** The entry was deleted at `generation`: no file of that generation or older may come back. */
  deleted?: true;
}

interface Manifest {
  keyId: string;
  /** Grows by one with every write of the manifest. */
  counter: number;
  records: Map<string, ManifestRecord>;
  /**
   * In memory only: entry name → counter of the journal line that last set
   * its record. Lines are applied to a cached manifest in place, so a reader
   * that took the manifest before reading an entry file may find the record
   * moved on meanwhile (a write it did not see): it reads the entry again
   * rather than call it rolled back.
   */
  setAt?: Map<string, number>;
}

interface Listing {
  manifest: Manifest | undefined;
  /** The manifest's counter when it was read (it moves on in place as journal lines are applied). */
  asOf: number;
  files: [string, CachedFile][];
}

interface CachedManifest extends FileIdentity {
  /** sha256 (hex) of manifest.json's bytes: a re-read of the same bytes is not parsed again. */
  digest: string;
  /** manifest.json with the journal's lines read so far applied (counter and records). */
  manifest: Manifest;
  /** manifest.json's own mac: the first journal line chains to it. */
  mac: string;
  journal: JournalState;
  /** Date.now() when both files were last looked at (see MANIFEST_FRESH_MS). */
  checkedAt: number;
}

/** How far manifest.journal has been read and applied. */
interface JournalState {
  /** Inode of the journal read (0: none yet). */
  ino: number;
  /** Bytes of complete lines applied. */
  offset: number;
  lines: number;
  /** The mac the next line chains to: the last line's, or manifest.json's. */
  head: string;
  /** The file there belongs to an older manifest.json (a crash during a fold); a writer removes it first. */
  stale: boolean;
  /** The entry name of each line applied, in order (see changeStateSince). */
  names: string[];
}

/** A lock file as one process saw it: the same id means the same, untouched lock. */
interface LockInstance {
  id: string;
  mtimeMs: number;
}

const MAX_CACHED_FILES = 10_000;
/** Entry files a listing reads between two turns of the event loop (a few milliseconds of work). */
const LISTING_SLICE_FILES = 200;
/** How long one listing of the directory's debris serves the writes of one instance. */
const DEBRIS_RELIST_MS = 60_000;

/**
 * Per store directory and master key id: the manifest generation at which a
 * check (verifyMasterKey) found each entry's latest version written with that
 * key. Kept by the process, not the instance: provider clients, and the
 * LocalStore each holds, are rebuilt every few minutes. As large as the
 * stores' manifests, which the instances hold anyway; a directory no check
 * used for VERIFIED_MEMO_TTL_MS (its store deleted, its key rotated) is
 * forgotten, so that the map does not outlive what it describes.
 */
const verifiedGenerations = new Map<string, { generations: Map<string, number>; usedAt: number }>();
/** Six store checks (every 5 minutes): a store still in use is checked long before. */
const VERIFIED_MEMO_TTL_MS = 30 * 60_000;

export class LocalStore {
  readonly keyId: string;
  private masterKey: Buffer;
  /** HMAC key for entry lists and the manifest, derived from the master key (never the master key itself). */
  private macKey: Buffer;
  private readonly files = new Map<string, CachedFile>();
  private manifestCache: CachedManifest | undefined;
  /** Manifest changes waiting for the next manifest write (see updateManifest). */
  private readonly manifestChanges: {
    name: string;
    record: ManifestRecord;
    resolve: () => void;
    reject: (err: unknown) => void;
  }[] = [];
  private manifestWriting = false;
  /** The directory's temp files and takeover markers, listed now and then (see debrisNames). */
  private debrisListing: { at: number; names: Promise<Set<string>> } | undefined;
  /** This process's creation of a missing manifest, which its other writers wait for (see ensureManifest). */
  private ensuring: Promise<void> | undefined;
  /** The journal read in progress; the next waits for it (see readJournal). */
  private journalReads: Promise<unknown> = Promise.resolve();
  /** A reader's manifest load in progress, shared (see loadManifest). */
  private manifestLoad: Promise<CachedManifest | undefined> | undefined;
  /** Locks this process holds now (see withLock): while any is held, the manifest is read strictly. */
  private locksHeld = 0;
  /** The listing in progress that `list` callers share (see sharedListing). */
  private listing: Promise<Listing> | undefined;
  /**
   * The highest manifest counter and entry generations this instance has read.
   * A lower one later is a rollback of the whole directory (entry files and
   * manifest together), which the files alone cannot show.
   */
  private highestCounter = 0;
  private readonly highestGeneration = new Map<string, number>();
  private readonly lockStaleMs: number;
  private readonly lockTimeoutMs: number;
  private readonly valueCacheTtlMs: number;
  private readonly createDirectory: boolean;
  private readonly journalMinEntries: number;

  constructor(
    readonly dir: string,
    masterKey: Buffer,
    options: LocalStoreOptions = {},
  ) {
    this.masterKey = Buffer.from(masterKey);
    this.keyId = masterKeyId(this.masterKey);
    this.macKey = Buffer.from(hkdfSync('sha256', this.masterKey, MAC_KEY_SALT, MAC_KEY_INFO, 32));
    this.lockStaleMs = options.lockStaleMs ?? 30_000;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 40_000;
    this.valueCacheTtlMs = options.valueCacheTtlMs ?? 5_000;
    this.createDirectory = options.createDirectory ?? true;
    this.journalMinEntries = options.journalMinEntries ?? DEFAULT_JOURNAL_MIN_ENTRIES;
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
    // The manifest before the entry files, as in readEntry; read once for the whole listing.
    const { manifest, asOf, files } = await this.sharedListing();
    for (const [path, parsed] of files) {
      const name = parsed.entry.name;
      if (!name.startsWith(prefix)) continue;
      if (path !== this.pathOf(name)) {
        throw new StoreTamperedError(
          `entry file ${basename(path)} holds entry "${name}"; it was moved or replaced`,
          name,
        );
      }
      this.verifyEntry(name, parsed);
      let file: CachedFile | undefined = parsed;
      const moved = this.recordMovedSince(manifest, name, asOf);
      if (!moved) this.checkAgainstManifest(name, parsed, manifest);
      if (moved) {
        // Written while the listing ran: read on its own (readEntry looks again until the two agree).
        file = await this.readEntry(name);
      } else if (parsed.entry.generation < (this.highestGeneration.get(name) ?? 0)) {
        // Older than this process saw: read that entry again on its own (readEntry looks twice before refusing).
        this.files.delete(path);
        this.recheckManifest();
        file = await this.readEntry(name);
      } else {
        this.noteGeneration(name, parsed.entry.generation);
      }
      const latest = file?.entry.versions.at(-1);
      if (!file || !latest) continue;
      out.push({
        name,
        latestVersion: latest.version,
        versions: file.entry.versions.length,
        updatedAt: latest.createdAt,
      });
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

  /**
   * Removes an entry and all its versions; false when there was none. The
   * manifest keeps a tombstone, so the entry's old file cannot be put back.
   * A damaged or tampered entry can be deleted (that is one way to recover).
   */
  async delete(name: string): Promise<boolean> {
    validateEntryName(name);
    this.assertOpen();
    await this.assertDirectory();
    const path = this.pathOf(name);
    return this.withLock(`${path}.lock`, `entry "${name}"`, async () => {
      await this.removeDebris(basename(path));
      await this.ensureManifest(false);
      this.files.delete(path);
      this.manifestCache = undefined;
      const record = (await this.readManifest())?.records.get(name);
      // Only a file that authenticates may raise the tombstone's generation.
      const file = await this.readFile(path).catch(() => undefined);
      const fileGeneration =
        file && file.entry.name === name && file.entry.format === FORMAT && this.entryMacMatches(file.entry)
          ? file.entry.generation
          : 0;
      this.files.delete(path);
      let existed = true;
      try {
        await fs.unlink(path);
      } catch (err) {
        if (errno(err) !== 'ENOENT') {
          throw new LocalStoreError(`cannot delete entry "${name}": ${describe(err)}`, { cause: err });
        }
        existed = false;
      }
      if (existed) await this.syncDirectory();
      // A delete that crashed between the two steps left a live record without a file: finish it.
      if (!existed && (record === undefined || record.deleted)) return false;
      const generation = Math.max(fileGeneration, record?.generation ?? 0, this.highestGeneration.get(name) ?? 0);
      await this.updateManifest(name, { generation, deleted: true });
      return existed;
    });
  }

  /**
   * Rewrites one entry in the current format and records it in the manifest.
   * Upgrades a format-1 entry; with `accept`, also takes an entry that fails
   * the rollback checks as it is now (each version must still decrypt).
   */
  async reseal(name: string, opts: ResealOptions = {}): Promise<ResealResult> {
    validateEntryName(name);
    this.assertOpen();
    await this.assertDirectory();
    const accept = opts.accept === true;
    const path = this.pathOf(name);
    return this.withLock(`${path}.lock`, `entry "${name}"`, async () => {
      await this.removeDebris(basename(path));
      await this.ensureManifest(accept);
      this.files.delete(path);
      this.manifestCache = undefined;
      const manifest = await this.readManifest();
      const file = await this.readFile(path);
      if (!file) throw new KeyNotFoundError(`entry "${name}" not found`, name);
      let problem: StoreTamperedError | undefined;
      try {
        this.verifyEntry(name, file);
        this.checkAgainstManifest(name, file, manifest);
        this.checkGeneration(name, file);
      } catch (err) {
        if (!(err instanceof StoreTamperedError) || !accept || file.entry.name !== name) throw err;
        problem = err;
      }
      if (!problem && file.entry.format === FORMAT) {
        return { name, outcome: 'current', generation: file.entry.generation };
      }
      // Only the list around the versions is taken on trust; each version still authenticates on its own.
      for (const stored of file.entry.versions) this.openVersion(name, stored);
      const trusted = file.entry.format === FORMAT && this.entryMacMatches(file.entry) ? file.entry.generation : 0;
      const generation = await this.commitEntry(name, trusted, file.entry.versions);
      return problem
        ? { name, outcome: 'accepted', generation, problem: problem.message }
        : { name, outcome: 'upgraded', generation };
    });
  }

  /** `reseal` for every entry file of the store; failures are reported per entry, not thrown. */
  async resealAll(opts: ResealOptions = {}): Promise<(ResealResult | { name: string; error: Error })[]> {
    const out: (ResealResult | { name: string; error: Error })[] = [];
    const names = new Set<string>();
    for (const [, file] of await this.readAllFiles()) names.add(file.entry.name);
    for (const name of [...names].sort()) {
      try {
        out.push(await this.reseal(name, opts));
      } catch (err) {
        out.push({ name, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
    return out;
  }

  /**
   * Throws unless the manifest and every entry's latest version were written
   * with this master key. An empty store passes: there is nothing the key could fail to open.
   */
  async verifyMasterKey(): Promise<void> {
    const manifest = await this.readManifest();
    if (!manifest) {
      for (const [, file] of await this.readAllFiles()) this.assertKeyId(file.entry.name, file.entry.versions.at(-1));
      return;
    }
    // The manifest's MAC already proves the key (readManifest checks it). Entry files are read only when
    // their manifest record moved since a check of this process last found them written with this key:
    // at 50,000 entries reading them all took about 3 s of CPU and 1 s of garbage collection every check
    // (every 5 minutes, on a fresh client each time), and a change arriving meanwhile waited. A file
    // changed behind the manifest's back is refused by the read that uses it (digest, MAC, generation).
    const memoKey = `${this.dir}\0${this.keyId}`;
    const now = Date.now();
    for (const [key, memo] of verifiedGenerations)
      if (now - memo.usedAt > VERIFIED_MEMO_TTL_MS) verifiedGenerations.delete(key);
    const memo = verifiedGenerations.get(memoKey) ?? { generations: new Map<string, number>(), usedAt: now };
    memo.usedAt = now;
    verifiedGenerations.set(memoKey, memo);
    const verified = memo.generations;
    let read = 0;
    for (const [name, record] of manifest.records) {
      if (record.deleted) {
        verified.delete(name);
        continue;
      }
      if (verified.get(name) === record.generation) continue;
      if (++read % LISTING_SLICE_FILES === 0) await setImmediate();
      const file = await this.readFile(this.pathOf(name));
      if (!file) continue;
      this.assertKeyId(name, file.entry.versions.at(-1));
      verified.set(name, record.generation);
    }
    for (const name of verified.keys()) if (!manifest.records.has(name)) verified.delete(name);
  }

  /**
   * What the manifest records now: its counter (one more per manifest write)
   * and, per entry, a mark that changes with every write of it: its latest
   * generation, with " deleted" for a tombstone (a delete keeps the
   * generation). Undefined when the store has no manifest yet. Read and checked
   * as every read checks it (MAC, master key, rollback), fresh from the disk:
   * the change watcher compares two of them.
   */
  async changeState(): Promise<{ counter: number; marks: Map<string, string> } | undefined> {
    const manifest = await this.readManifest(true);
    if (!manifest) return undefined;
    const marks = new Map<string, string>();
    for (const [name, record] of manifest.records)
      marks.set(name, record.deleted ? `${record.generation} deleted` : String(record.generation));
    return { counter: manifest.counter, marks };
  }

  /**
   * changeState for the entries written since manifest counter `since` only,
   * read as changeState reads; undefined when the journal read since the last
   * fold does not reach back that far (then compare a whole changeState). At
   * 50,000 entries a change costs the watcher its own lines, not 50,000 marks.
   */
  async changeStateSince(since: number): Promise<{ counter: number; marks: Map<string, string> } | undefined> {
    const manifest = await this.readManifest(true);
    const cached = this.manifestCache;
    if (!manifest || cached?.manifest !== manifest) return undefined;
    const { names } = cached.journal;
    const base = manifest.counter - names.length;
    if (since < base || since > manifest.counter) return undefined;
    const marks = new Map<string, string>();
    for (const name of names.slice(since - base)) {
      const record = manifest.records.get(name);
      if (record) marks.set(name, record.deleted ? `${record.generation} deleted` : String(record.generation));
    }
    return { counter: manifest.counter, marks };
  }

  /** Forgets cached plaintext and the keys; the store is unusable afterwards. */
  close(): void {
    this.files.clear();
    this.manifestCache = undefined;
    this.masterKey.fill(0);
    this.masterKey = Buffer.alloc(0);
    this.macKey.fill(0);
    this.macKey = Buffer.alloc(0);
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
    return this.withLock(`${path}.lock`, `entry "${name}"`, async () => {
      await this.removeDebris(basename(path));
      await this.ensureManifest(false);
      // Read afresh under the lock: the cache may predate another process's put (the manifest's cache
      // is checked against the file, see FileIdentity). A tampered entry is not written over.
      this.files.delete(path);
      const file = await this.readEntry(name);
      const latest = file?.entry.versions.at(-1);
      // A retry of a put that already landed (same token): the version it made, nothing new.
      if (opts.requestToken !== undefined && latest?.requestToken === opts.requestToken)
        return { version: latest.version };
      const merged = mode === 'merge' && file && latest ? { ...this.decrypt(file, latest), ...properties } : properties;
      const version = (latest?.version ?? 0) + 1;
      const stored = this.encrypt(name, version, merged);
      if (opts.requestToken !== undefined) stored.requestToken = opts.requestToken;
      const versions = [...(file?.entry.versions ?? []), stored].slice(-keep);
      await this.commitEntry(name, file?.entry.generation ?? 0, versions);
      return { version };
    });
  }

  /**
   * Writes an entry file at the next generation, then records it in the
   * manifest (in that order: a crash in between leaves the entry ahead of the
   * manifest, which reads fine). Called under the entry's lock.
   */
  private async commitEntry(name: string, previousGeneration: number, versions: StoredVersion[]): Promise<number> {
    const record = (await this.readManifest())?.records.get(name);
    const generation = Math.max(previousGeneration, record?.generation ?? 0, this.highestGeneration.get(name) ?? 0) + 1;
    const entry: EntryFile = { format: FORMAT, name, generation, versions };
    entry.mac = this.entryMac(entry);
    const text = `${JSON.stringify(entry, null, 2)}\n`;
    await this.writeAtomically(this.pathOf(name), text);
    this.noteGeneration(name, generation);
    const digest = sha256Hex(text);
    await this.updateManifest(name, { generation, digest });
    return generation;
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

  /**
   * Creates the manifest when the store has none: an empty store, or one
   * written in format 1 (then every entry file is pinned by its sha256 at
   * generation 0). Entries in format 2 without a manifest mean it was removed:
   * refused, unless `adopt` (`reseal --accept`) takes them as they are.
   * Called under an entry's lock; takes the manifest's.
   */
  private async ensureManifest(adopt: boolean): Promise<void> {
    if (await this.loadManifest()) return;
    // Writers of this process that found none wait for the one creating it, rather than queue on its lock
    // behind a stream of manifest writes (a bulk load of puts starts with every one of them here).
    const running = this.ensuring;
    if (running) {
      await running.catch(() => undefined);
      if (await this.loadManifest()) return;
    }
    const creation = this.createManifest(adopt);
    this.ensuring = creation;
    try {
      await creation;
    } finally {
      if (this.ensuring === creation) this.ensuring = undefined;
    }
  }

  private async createManifest(adopt: boolean): Promise<void> {
    await this.withLock(join(this.dir, `${MANIFEST_FILE}.lock`), 'the store manifest', async () => {
      this.manifestCache = undefined;
      if (await this.loadManifest()) return;
      if (this.highestCounter > 0) throw this.manifestRemoved();
      const records = new Map<string, ManifestRecord>();
      for (const [path, file] of await this.readAllFiles()) {
        const name = file.entry.name;
        // A file under another entry's name is refused when that entry is read; it is not recorded.
        if (path !== this.pathOf(name)) continue;
        this.assertKeyId(name, file.entry.versions.at(-1));
        if (file.entry.format === LEGACY_FORMAT) {
          records.set(name, { generation: 0, digest: file.digest });
        } else if (!adopt) {
          throw new StoreTamperedError(
            `the store manifest ${MANIFEST_FILE} is missing but entry "${name}" is in format ${FORMAT}: the manifest was removed; put it back, or accept the entries as they are with \`secretsync store reseal --accept\``,
            name,
          );
        } else if (this.entryMacMatches(file.entry)) {
          records.set(name, { generation: file.entry.generation, digest: file.digest });
        }
      }
      await this.writeManifest({ keyId: this.keyId, counter: 1, records });
      await this.removeJournal();
    });
  }

  /**
   * Records one entry's new state in the manifest, under the manifest's own
   * lock (taken after an entry's lock, never before). Changes that arrive
   * while a manifest write runs are applied together in the next one (group
   * commit). A small store rewrites manifest.json; a large one appends the
   * changes to manifest.journal (see FORMAT), folding it into manifest.json
   * when it has grown. The promise settles once a manifest holding the change
   * is on disk (or that write failed).
   */
  private updateManifest(name: string, record: ManifestRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.manifestChanges.push({ name, record, resolve, reject });
      if (!this.manifestWriting) void this.writeManifestChanges();
    });
  }

  private async writeManifestChanges(): Promise<void> {
    this.manifestWriting = true;
    try {
      while (this.manifestChanges.length > 0) {
        const batch = this.manifestChanges.splice(0);
        try {
          await this.withLock(join(this.dir, `${MANIFEST_FILE}.lock`), 'the store manifest', async () => {
            await this.removeDebris(MANIFEST_FILE);
            // Not dropped: what another process wrote since shows as a changed file (see FileIdentity).
            const { current, cached } = await this.manifestForWrite();
            const changes = batch.map(({ name, record }) => [name, record] as const);
            const { journal } = cached;
            const journalled = current.records.size >= this.journalMinEntries;
            const fold = journal.lines + changes.length > Math.max(this.journalMinEntries, current.records.size / 4);
            if (journalled && !fold && !journal.stale) {
              await this.appendJournal(cached, changes);
            } else {
              const records = new Map(current.records);
              for (const [name, record] of changes) records.set(name, record);
              await this.writeManifest({ keyId: this.keyId, counter: current.counter + 1, records });
              // manifest.json now holds every line of the journal: it goes (a crash first leaves it stale, see FORMAT).
              if (journal.ino !== 0 || journal.stale) await this.removeJournal();
            }
          });
          for (const { resolve } of batch) resolve();
        } catch (err) {
          for (const { reject } of batch) reject(err);
        }
      }
    } finally {
      this.manifestWriting = false;
    }
  }

  /**
   * The manifest as it is on disk, with the cached object it was read into:
   * the journal is appended at that object's offset, so it must be the one
   * the read moved (a concurrent reader may have replaced the cache meanwhile).
   * Under the manifest lock.
   */
  private async manifestForWrite(): Promise<{ current: Manifest; cached: CachedManifest }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.readManifest();
      const cached = this.manifestCache;
      // ensureManifest made it under the entry lock the writers hold; gone now means someone removed it.
      if (!current) throw this.manifestRemoved();
      if (cached?.manifest === current) return { current, cached };
    }
    throw new LocalStoreError('the store manifest kept changing in memory while it was being written; retry');
  }

  /** Appends one chained line per change to manifest.journal and applies them to the cached manifest. Under the manifest lock. */
  private async appendJournal(cached: CachedManifest, changes: (readonly [string, ManifestRecord])[]): Promise<void> {
    const { manifest, journal } = cached;
    let head = journal.head;
    let counter = manifest.counter;
    let text = '';
    for (const [name, record] of changes) {
      counter += 1;
      const mac = this.journalMac(head, counter, name, record);
      text += `${JSON.stringify({ counter, name, ...record, mac })}\n`;
      head = mac;
    }
    const path = this.journalPath();
    let handle: fs.FileHandle;
    let created = false;
    try {
      try {
        handle = await fs.open(path, 'r+');
      } catch (err) {
        if (errno(err) !== 'ENOENT') throw err;
        handle = await fs.open(path, 'wx', 0o600);
        created = true;
      }
      try {
        const stat = await handle.stat();
        if (!created && stat.ino !== journal.ino && journal.ino !== 0) {
          throw new Error('the journal was replaced while the manifest lock was held');
        }
        // Bytes past the last complete line are a line a crashed writer left half written: cut off.
        if (stat.size !== journal.offset) await handle.truncate(journal.offset);
        await handle.write(text, journal.offset, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw new LocalStoreError(`cannot write to local store directory ${this.dir}: ${describe(err)}`, { cause: err });
    }
    if (created) await this.syncDirectory();
    // Applied by reading them back, as any reader does: readers of this process may be applying them already,
    // and only one at a time moves the journal state (see readJournal).
    const problem = await this.readJournal(cached);
    if (problem !== undefined || manifest.counter !== counter) {
      this.manifestCache = undefined;
      throw new LocalStoreError(
        `the store manifest journal could not be read back after a write (${problem ?? 'short'})`,
      );
    }
    this.highestCounter = Math.max(this.highestCounter, counter);
  }

  private async removeJournal(): Promise<void> {
    try {
      await fs.rm(this.journalPath(), { force: true });
    } catch (err) {
      throw new LocalStoreError(`cannot write to local store directory ${this.dir}: ${describe(err)}`, { cause: err });
    }
    await this.syncDirectory();
    if (this.manifestCache) this.manifestCache.journal = emptyJournal(this.manifestCache.mac);
  }

  private async writeManifest(manifest: Manifest): Promise<void> {
    const sorted: Manifest = {
      keyId: manifest.keyId,
      counter: manifest.counter,
      records: new Map([...manifest.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    };
    const file = {
      format: FORMAT,
      keyId: sorted.keyId,
      counter: sorted.counter,
      entries: [...sorted.records].map(([name, r]) => ({ name, ...r })),
      mac: this.manifestMac(sorted),
    };
    const text = `${JSON.stringify(file, null, 2)}\n`;
    await this.writeAtomically(this.manifestPath(), text);
    // What was written, by its bytes: the next read finds the same bytes and does not parse them again.
    // No identity yet (inode 0): that read compares the bytes. A journal there, if any, is stale now: the caller removes it.
    this.manifestCache = {
      ino: 0,
      mtimeMs: 0,
      size: -1,
      readAt: 0,
      digest: sha256Hex(text),
      manifest: sorted,
      mac: file.mac,
      journal: emptyJournal(file.mac),
      checkedAt: 0,
    };
    this.highestCounter = Math.max(this.highestCounter, sorted.counter);
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

  /**
   * Leftovers of crashed processes next to `base`: its temp files (only ever
   * called under `base`'s lock, so no live writer owns them) and takeover
   * markers of its lock older than a stale lock (their takers are gone).
   */
  private async removeDebris(base: string): Promise<void> {
    const names = await this.debrisNames();
    for (const n of names) {
      if (!n.startsWith(`${base}.`)) continue;
      const path = join(this.dir, n);
      if (n.endsWith('.tmp')) {
        await fs.rm(path, { force: true });
        names.delete(n);
      } else if (n.startsWith(`${base}.lock.takeover.`)) {
        const stat = await fs.stat(path).catch(() => undefined);
        if (stat && Date.now() - stat.mtimeMs > this.lockStaleMs) await fs.rm(path, { force: true });
        if (!stat || Date.now() - stat.mtimeMs > this.lockStaleMs) names.delete(n);
      }
    }
  }

  /**
   * Names of temp files and takeover markers in the directory, from a listing
   * shared by every write for DEBRIS_RELIST_MS (and taken again after a stale
   * lock was taken over: that is when a crash leaves debris). A listing per
   * write cost a readdir of the whole store per put: O(entries) again.
   */
  private debrisNames(): Promise<Set<string>> {
    const now = Date.now();
    const listing = this.debrisListing;
    if (listing && now - listing.at < DEBRIS_RELIST_MS) return listing.names;
    const names = fs
      .readdir(this.dir)
      .then((all) => new Set(all.filter((n) => n.endsWith('.tmp') || n.includes('.lock.takeover.'))))
      .catch(() => new Set<string>());
    this.debrisListing = { at: now, names };
    return names;
  }

  /**
   * A lock file, created exclusively, holding a random token. The holder
   * touches it every third of `lockStaleMs`, so only a lock whose writer died
   * (or stalled that long) goes stale; a stale lock is removed by exactly one
   * process (see takeOverStaleLock), and then everyone races for it afresh.
   */
  private async withLock<T>(lock: string, what: string, fn: () => Promise<T>): Promise<T> {
    const token = `${process.pid}.${randomBytes(8).toString('hex')}`;
    const deadline = Date.now() + this.lockTimeoutMs;
    let handle: fs.FileHandle | undefined;
    for (let attempt = 0; ; attempt++) {
      handle = await this.tryCreateLock(lock, token, what);
      if (handle) break;
      if (Date.now() > deadline) {
        throw new LocalStoreError(
          `${what} is locked by another writer (${lock}); retry, or remove the lock file if no writer is running`,
        );
      }
      if (await this.takeOverStaleLock(lock, what)) {
        // Its holder crashed: what it left next to the file shows in a fresh listing.
        this.debrisListing = undefined;
        continue;
      }
      await sleep(Math.min(100, 5 * 2 ** Math.min(attempt, 5)) + Math.random() * 10);
    }
    const held = handle;
    this.locksHeld += 1;
    const heartbeat = setInterval(
      () => {
        const now = new Date();
        held.utimes(now, now).catch(() => undefined);
      },
      Math.max(10, Math.floor(this.lockStaleMs / 3)),
    );
    heartbeat.unref();
    try {
      return await fn();
    } finally {
      this.listing = undefined;
      this.manifestLoad = undefined;
      this.locksHeld -= 1;
      clearInterval(heartbeat);
      await held.close().catch(() => undefined);
      // Only our own lock: had we stalled past lockStaleMs, the file there now is another writer's.
      const content = await fs.readFile(lock, 'utf8').catch(() => '');
      if (content.startsWith(`${token} `)) await fs.rm(lock, { force: true });
    }
  }

  private async tryCreateLock(lock: string, token: string, what: string): Promise<fs.FileHandle | undefined> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(lock, 'wx', 0o600);
    } catch (err) {
      if (errno(err) === 'EEXIST') return undefined;
      throw new LocalStoreError(`cannot lock ${what} in ${this.dir}: ${describe(err)}`, { cause: err });
    }
    try {
      await handle.writeFile(`${token} ${new Date().toISOString()}\n`);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fs.rm(lock, { force: true });
      throw new LocalStoreError(`cannot lock ${what} in ${this.dir}: ${describe(err)}`, { cause: err });
    }
    return handle;
  }

  /**
   * Removes `lock` if it is stale, and then only if it is still the very lock
   * judged stale: the remover must first create, exclusively, a takeover
   * marker named after that lock instance (its content, inode and mtime), and
   * re-reads the lock while holding it. Two processes that both judged the
   * lock stale cannot both remove it, and neither can remove a fresh lock
   * someone took in between (its id differs). A marker as old as a stale lock
   * was left by a taker that crashed; the next level's marker decides then.
   * True when this process removed the lock.
   */
  private async takeOverStaleLock(lock: string, what: string): Promise<boolean> {
    const seen = await this.lockInstance(lock, what);
    if (!seen || Date.now() - seen.mtimeMs <= this.lockStaleMs) return false;
    for (let level = 0; level < MAX_TAKEOVER_LEVELS; level++) {
      const marker = `${lock}.takeover.${seen.id}.${level}`;
      try {
        await (await fs.open(marker, 'wx', 0o600)).close();
      } catch (err) {
        if (errno(err) !== 'EEXIST') {
          throw new LocalStoreError(`cannot take over the stale lock of ${what} in ${this.dir}: ${describe(err)}`, {
            cause: err,
          });
        }
        const stat = await fs.stat(marker).catch(() => undefined);
        if (stat && Date.now() - stat.mtimeMs > this.lockStaleMs) continue;
        return false;
      }
      try {
        const now = await this.lockInstance(lock, what);
        if (now?.id !== seen.id) return false;
        await fs.rm(lock, { force: true });
        return true;
      } finally {
        await fs.rm(marker, { force: true });
      }
    }
    return false;
  }

  /** The lock file's identity (content, inode and mtime read through one handle), or undefined when there is none. */
  private async lockInstance(lock: string, what: string): Promise<LockInstance | undefined> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(lock, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw new LocalStoreError(`cannot read the lock of ${what} in ${this.dir}: ${describe(err)}`, { cause: err });
    }
    try {
      const stat = await handle.stat();
      const content = await handle.readFile();
      const id = createHash('sha256')
        .update(content)
        .update(`\0${stat.ino}\0${stat.mtimeMs}`)
        .digest('hex')
        .slice(0, 24);
      return { id, mtimeMs: stat.mtimeMs };
    } finally {
      await handle.close();
    }
  }

  // --- reading -------------------------------------------------------------

  private pathOf(name: string): string {
    return join(this.dir, `${createHash('sha256').update(name, 'utf8').digest('hex')}.json`);
  }

  private manifestPath(): string {
    return join(this.dir, MANIFEST_FILE);
  }

  private journalPath(): string {
    return join(this.dir, MANIFEST_JOURNAL_FILE);
  }

  /**
   * The checked file of an entry, or undefined when there is none; cached
   * while the file is unchanged. The manifest is read before the entry file:
   * writers go entry first, manifest second, so read in this order a live
   * store never shows an entry behind its manifest.
   */
  private async readEntry(name: string): Promise<CachedFile | undefined> {
    const path = this.pathOf(name);
    for (let attempt = 0, moved = 0; ; attempt++) {
      const manifest = await this.readManifest();
      const asOf = manifest?.counter ?? 0;
      const file = await this.readFile(path);
      if (!file) {
        await this.assertDirectory();
        return undefined;
      }
      this.verifyEntry(name, file);
      try {
        this.checkAgainstManifest(name, file, manifest);
        this.checkGeneration(name, file);
        return file;
      } catch (err) {
        // Written by this process's or another's write while the file was read: read it again.
        if (this.recordMovedSince(manifest, name, asOf) && moved++ < 5) {
          attempt--;
          continue;
        }
        // A concurrent read of this process may have seen a newer file a moment ago, or the manifest
        // (see MANIFEST_FRESH_MS) be a moment old: look again at both first.
        if (attempt > 0) throw err;
        this.files.delete(path);
        this.recheckManifest();
      }
    }
  }

  /** Whether `manifest` (the cached one) took a journal line for `name` after counter `asOf`. */
  private recordMovedSince(manifest: Manifest | undefined, name: string, asOf: number): boolean {
    return (manifest?.setAt?.get(name) ?? 0) > asOf;
  }

  /**
   * Makes the next load look at manifest.json's bytes and the journal again,
   * keeping what was read when they are the same (a re-parse at 50,000 entries
   * costs tens of milliseconds, and would hand concurrent readers and the
   * writer different objects).
   */
  private recheckManifest(): void {
    const cached = this.manifestCache;
    if (!cached) return;
    cached.ino = 0;
    cached.checkedAt = 0;
  }

  /** The name inside, the key id and (format 2) the MAC over the version list; once per parsed file. */
  private verifyEntry(name: string, file: CachedFile): void {
    if (file.checked) return;
    if (file.entry.name !== name) {
      throw new StoreTamperedError(
        `entry file for "${name}" holds entry "${file.entry.name}"; it was moved or replaced`,
        name,
      );
    }
    this.assertKeyId(name, file.entry.versions.at(-1));
    if (file.entry.format === FORMAT && !this.entryMacMatches(file.entry)) {
      throw new StoreTamperedError(
        `entry "${name}" failed authentication: its version list or metadata was edited (versions dropped, reordered or changed)`,
        name,
      );
    }
    file.checked = true;
  }

  /** An entry file must not be older than, or differ at the same generation from, what the manifest recorded. */
  private checkAgainstManifest(name: string, file: CachedFile, manifest: Manifest | undefined): void {
    const problem = rollbackProblem(
      name,
      { format: file.entry.format, generation: file.entry.generation, digest: file.digest },
      manifest?.records,
    );
    if (problem) throw new StoreTamperedError(problem, name);
  }

  /** A generation lower than this instance read before: the directory went back as a whole. */
  private checkGeneration(name: string, file: CachedFile): void {
    const seen = this.highestGeneration.get(name) ?? 0;
    if (file.entry.generation < seen) {
      throw new StoreTamperedError(
        `entry "${name}" was rolled back: its file holds generation ${file.entry.generation}, this process read generation ${seen} before (was the store directory restored from an older copy? if on purpose, restart the operator)`,
        name,
      );
    }
    this.noteGeneration(name, file.entry.generation);
  }

  private noteGeneration(name: string, generation: number): void {
    if (generation <= (this.highestGeneration.get(name) ?? 0)) return;
    this.highestGeneration.set(name, generation);
    if (this.highestGeneration.size > MAX_REMEMBERED_GENERATIONS) {
      const oldest = this.highestGeneration.keys().next();
      if (!oldest.done) this.highestGeneration.delete(oldest.value);
    }
  }

  /**
   * The checked manifest (manifest.json and its journal), or undefined when
   * the store has none (empty, or format 1 only). `fresh`: look at the files
   * now, even if they were looked at a moment ago (see MANIFEST_FRESH_MS).
   */
  private async readManifest(fresh = false): Promise<Manifest | undefined> {
    for (let attempt = 0; ; attempt++) {
      const cached = await this.loadManifest(fresh);
      if (!cached) {
        if (this.highestCounter === 0) return undefined;
        await this.assertDirectory();
        if (attempt > 0) throw this.manifestRemoved();
        continue;
      }
      const { counter } = cached.manifest;
      if (counter >= this.highestCounter) {
        this.highestCounter = counter;
        return cached.manifest;
      }
      if (attempt > 0) {
        throw new StoreTamperedError(
          `the store manifest was rolled back: it holds counter ${counter}, this process read counter ${this.highestCounter} before (was the store directory restored from an older copy? if on purpose, restart the operator)`,
        );
      }
      this.manifestCache = undefined;
    }
  }

  private manifestRemoved(): StoreTamperedError {
    return new StoreTamperedError(
      `the store manifest ${MANIFEST_FILE} was removed (this process read counter ${this.highestCounter} before)`,
    );
  }

  /**
   * The parsed manifest, cached by file identity; undefined when there is none.
   * Readers share a load in progress: a recheck of a 1 MB manifest would
   * otherwise be made by every get that asks while it runs (thousands a second).
   * A writer (any lock held in this process) reads the manifest as it is now,
   * alone: it writes what it read back.
   */
  private loadManifest(fresh = false): Promise<CachedManifest | undefined> {
    this.assertOpen();
    if (this.locksHeld > 0 || fresh) return this.loadManifestNow(0);
    const cached = this.manifestCache;
    if (cached && Date.now() - cached.checkedAt < MANIFEST_FRESH_MS) return Promise.resolve(cached);
    const running = this.manifestLoad;
    if (running) return running;
    const load = this.loadManifestNow(MANIFEST_RECHECK_MS);
    this.manifestLoad = load;
    const done = () => {
      if (this.manifestLoad === load) this.manifestLoad = undefined;
    };
    load.then(done, done);
    return load;
  }

  /**
   * manifest.json (parsed and authenticated when its bytes changed), then the
   * journal lines appended since the last look. A journal that does not
   * continue what was read (replaced, cut short, or written for a newer
   * manifest.json read a moment too early) means one more look at both, from
   * scratch; failing again, it was tampered with.
   */
  private async loadManifestNow(recheckMs: number): Promise<CachedManifest | undefined> {
    for (let attempt = 0; ; attempt++) {
      const checkedAt = Date.now();
      const base = await this.loadManifestFile(attempt === 0 ? recheckMs : 0);
      if (!base) return undefined;
      const problem = await this.readJournal(base);
      if (problem === undefined) {
        base.checkedAt = checkedAt;
        return base;
      }
      this.manifestCache = undefined;
      if (attempt > 0) {
        throw new StoreTamperedError(
          `the store manifest journal ${MANIFEST_JOURNAL_FILE} failed authentication (${problem}): it was modified`,
        );
      }
    }
  }

  private async loadManifestFile(recheckMs: number): Promise<CachedManifest | undefined> {
    const path = this.manifestPath();
    // What was compared, not whatever this.manifestCache is when the stat returns (another load may have dropped it).
    const previous = this.manifestCache;
    const read = await this.readChanged(path, previous, recheckMs);
    if (read === undefined) {
      this.manifestCache = undefined;
      return undefined;
    }
    if (read === 'unchanged' && previous) return previous;
    if (read === 'unchanged') return undefined;
    const digest = sha256Hex(read.text);
    if (previous && previous.digest === digest) {
      Object.assign(previous, identityOf(read));
      return previous;
    }
    const { manifest, mac } = parseManifest(read.text);
    const { keyId } = manifest;
    if (keyId !== this.keyId) {
      throw new MasterKeyMismatchError(
        `the master key does not match the store: its manifest was written with master key id ${keyId}, the key given has id ${this.keyId}`,
      );
    }
    if (!macEquals(mac, this.manifestMac(manifest))) {
      throw new StoreTamperedError(`the store manifest ${MANIFEST_FILE} failed authentication: it was modified`);
    }
    this.manifestCache = { ...identityOf(read), digest, manifest, mac, journal: emptyJournal(mac), checkedAt: 0 };
    return this.manifestCache;
  }

  /**
   * Applies the journal's complete lines past `base.journal.offset` to
   * `base.manifest`; a problem (text, never a value) when the file does not
   * continue what was read. A line not yet ended is left for the next look:
   * a writer may be writing it.
   */
  private readJournal(base: CachedManifest): Promise<string | undefined> {
    // One at a time: each moves the journal state (offset, counter, chain head) of the cached manifest.
    const run = this.journalReads.then(() => this.readJournalNow(base));
    this.journalReads = run.catch(() => undefined);
    return run;
  }

  private async readJournalNow(base: CachedManifest): Promise<string | undefined> {
    const { journal, manifest } = base;
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.journalPath(), 'r');
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw this.unreadable(err);
      // Gone after lines were applied: manifest.json was rewritten with them (read it again) or the journal was removed.
      return journal.lines > 0 || journal.ino !== 0 ? 'it was removed' : undefined;
    }
    let bytes: Buffer;
    try {
      const stat = await handle.stat();
      if (journal.ino !== 0 && stat.ino !== journal.ino) return 'it was replaced';
      if (stat.size < journal.offset) return 'it was cut short';
      journal.ino = stat.ino;
      if (journal.stale || stat.size === journal.offset) return undefined;
      bytes = Buffer.alloc(stat.size - journal.offset);
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, journal.offset);
      bytes = bytes.subarray(0, bytesRead);
    } catch (err) {
      throw this.unreadable(err);
    } finally {
      await handle.close();
    }
    let start = 0;
    for (let end = bytes.indexOf(10); end >= 0; start = end + 1, end = bytes.indexOf(10, start)) {
      const line = parseJournalLine(bytes.toString('utf8', start, end));
      const expected =
        line && line.counter === manifest.counter + 1
          ? this.journalMac(journal.head, line.counter, line.name, line.record)
          : undefined;
      if (!line || expected === undefined || !macEquals(line.mac, expected)) {
        // The first line of a journal that manifest.json already holds (a crash during a fold): ignored.
        if (journal.lines === 0 && start === 0 && journal.offset === 0 && line && line.counter <= manifest.counter) {
          journal.stale = true;
          return undefined;
        }
        return `line ${journal.lines + 1} does not authenticate`;
      }
      manifest.records.set(line.name, line.record);
      manifest.counter = line.counter;
      journal.head = line.mac;
      journal.lines += 1;
      journal.names.push(line.name);
      (manifest.setAt ??= new Map()).set(line.name, line.counter);
      journal.offset += end + 1 - start;
    }
    return undefined;
  }

  private async readFile(path: string): Promise<CachedFile | undefined> {
    this.assertOpen();
    const cached = this.files.get(path);
    const read = this.readEntryFileNow(path, cached);
    if (read === undefined) {
      this.files.delete(path);
      return undefined;
    }
    if (read === 'unchanged' && cached) {
      // Re-insert to keep the Map in least-recently-used order for eviction.
      this.files.delete(path);
      this.files.set(path, cached);
      return cached;
    }
    if (read === 'unchanged') return undefined;
    const digest = sha256Hex(read.text);
    if (cached && cached.digest === digest) {
      // Read again because the last read was racy (see FileIdentity): the same bytes, so the same parse.
      Object.assign(cached, identityOf(read));
      this.files.delete(path);
      this.files.set(path, cached);
      return cached;
    }
    const entry = parseEntryFile(path, read.text);
    const fresh: CachedFile = {
      ...identityOf(read),
      entry,
      digest,
      checked: false,
      values: new Map(),
    };
    this.files.delete(path);
    this.files.set(path, fresh);
    if (this.files.size > MAX_CACHED_FILES) {
      const oldest = this.files.keys().next();
      if (!oldest.done) this.files.delete(oldest.value);
    }
    return fresh;
  }

  /**
   * readChanged for an entry file, with synchronous calls: an entry file is a
   * few KiB on a local volume, read in microseconds, where each asynchronous
   * call costs the event loop tens of microseconds of promise and thread-pool
   * work (10,000 reads: 170 ms of CPU synchronously, 1.3 s with 16 in flight
   * asynchronously, measured). A restart reads every entry once and checks
   * each again per property it serves. The price is that a volume that hangs
   * holds the event loop (the liveness probe then restarts the operator)
   * instead of only the reads; the manifest (megabytes at 50,000 entries) is
   * still read asynchronously.
   */
  private readEntryFileNow(path: string, cached: FileIdentity | undefined): 'unchanged' | FileRead | undefined {
    const readAt = Date.now();
    if (cached) {
      let stat: Stats;
      try {
        stat = statSync(path);
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
        throw this.unreadable(err);
      }
      if (sameFile(cached, stat) && cached.readAt - cached.mtimeMs > RACY_WINDOW_MS) return 'unchanged';
    }
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw this.unreadable(err);
    }
    try {
      // The open file's stat: the file may have been replaced since the one above.
      const stat = fstatSync(fd);
      const chunks: Buffer[] = [];
      let position = 0;
      for (let want = Math.max(stat.size + 1, 1); ; want = 64 * 1024) {
        const buffer = Buffer.allocUnsafe(want);
        const bytesRead = readSync(fd, buffer, 0, want, position);
        if (bytesRead === 0) break;
        chunks.push(buffer.subarray(0, bytesRead));
        position += bytesRead;
        if (bytesRead < want) break;
      }
      return { stat, text: Buffer.concat(chunks).toString('utf8'), readAt };
    } catch (err) {
      throw this.unreadable(err);
    } finally {
      closeSync(fd);
    }
  }

  /** `unchanged` when `cached` is still the file at `path`, else its text; undefined when there is none. */
  private async readChanged(
    path: string,
    cached: FileIdentity | undefined,
    recheckMs = 0,
  ): Promise<'unchanged' | FileRead | undefined> {
    const readAt = Date.now();
    // Nothing cached: no stat first, the open file's is the one that counts (a restart reads every entry once,
    // and each filesystem call costs the event loop tens of microseconds).
    if (cached) {
      let stat: Stats;
      try {
        stat = await fs.stat(path);
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
        throw this.unreadable(err);
      }
      if (
        sameFile(cached, stat) &&
        (cached.readAt - cached.mtimeMs > RACY_WINDOW_MS || readAt - cached.readAt < recheckMs)
      )
        return 'unchanged';
    }
    // Stat the open file rather than reuse `stat`: the file may have been replaced in between.
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw this.unreadable(err);
    }
    try {
      const fstat = await handle.stat();
      return { stat: fstat, text: await readOpenFile(handle, fstat.size), readAt };
    } catch (err) {
      throw this.unreadable(err);
    } finally {
      await handle.close();
    }
  }

  /**
   * The manifest, then every entry file: one listing shared by every `list`
   * that asks while it runs, so a burst of finds (hundreds of ManagedSecrets
   * refreshing on one grid) stats each file once, not once per find. The pair
   * is read in that order, as a lone listing would be; a write by this
   * process ends the sharing, so a listing after it sees it.
   */
  private sharedListing(): Promise<Listing> {
    const running = this.listing;
    if (running) return running;
    const listing = (async (): Promise<Listing> => {
      const manifest = await this.readManifest();
      const asOf = manifest?.counter ?? 0;
      return { manifest, asOf, files: await this.readAllFiles() };
    })();
    this.listing = listing;
    const done = () => {
      if (this.listing === listing) this.listing = undefined;
    };
    listing.then(done, done);
    return listing;
  }

  /** Every entry file, parsed but not checked, with its path. */
  private async readAllFiles(): Promise<[string, CachedFile][]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      throw this.unreadable(err);
    }
    const out: [string, CachedFile][] = [];
    // Temp files, locks and the manifest are skipped by name: only renamed, complete entry files count.
    const entryFiles = names.filter((x) => ENTRY_FILE.test(x));
    for (const [i, n] of entryFiles.entries()) {
      // Entry files are read synchronously (see readEntryFileNow): a turn of the event loop now and then,
      // or a listing of 50,000 would hold it for a second.
      if (i % LISTING_SLICE_FILES === LISTING_SLICE_FILES - 1) await setImmediate();
      const path = join(this.dir, n);
      const file = await this.readFile(path);
      if (file) out.push([path, file]);
    }
    return out;
  }

  private decrypt(file: CachedFile, stored: StoredVersion): Properties {
    const now = Date.now();
    const hit = file.values.get(stored.version);
    if (hit && hit.expiresAt > now) return { ...hit.properties };
    const properties = this.openVersion(file.entry.name, stored);
    if (this.valueCacheTtlMs > 0) {
      file.values.set(stored.version, { properties, expiresAt: now + this.valueCacheTtlMs });
    }
    return { ...properties };
  }

  /** Decrypts one version; its own AES-GCM tags bind it to the entry name and version number. */
  private openVersion(name: string, stored: StoredVersion): Properties {
    this.assertKeyId(name, stored);
    let dataKey: Buffer | undefined;
    let plaintext: Buffer | undefined;
    try {
      dataKey = open(this.masterKey, fromJson(stored.wrappedKey), aad('key', name, stored.version));
      plaintext = open(dataKey, fromJson(stored), aad('data', name, stored.version));
    } catch {
      throw new StoreTamperedError(
        `entry "${name}" version ${stored.version} failed authentication: its file was modified, or versions or files were swapped`,
        name,
      );
    } finally {
      dataKey?.fill(0);
    }
    try {
      return checkedProperties(JSON.parse(plaintext.toString('utf8')) as unknown);
    } catch {
      throw new LocalStoreError(`entry "${name}" version ${stored.version} does not hold a JSON object of strings`);
    } finally {
      plaintext.fill(0);
    }
  }

  private entryMac(entry: EntryFile): string {
    const versions = entry.versions.map((v) => [
      v.version,
      v.createdAt,
      v.keyId,
      v.requestToken ?? null,
      sealedDigest(v),
    ]);
    return hmac(this.macKey, JSON.stringify([ENTRY_MAC_LABEL, entry.name, entry.generation, versions]));
  }

  private entryMacMatches(entry: EntryFile): boolean {
    return entry.mac !== undefined && macEquals(entry.mac, this.entryMac(entry));
  }

  private manifestMac(manifest: Manifest): string {
    const records = [...manifest.records].map(([name, r]) => [name, r.generation, r.deleted ? null : (r.digest ?? '')]);
    return hmac(this.macKey, JSON.stringify([MANIFEST_MAC_LABEL, manifest.keyId, manifest.counter, records]));
  }

  /** A journal line's MAC: over the one before it (or manifest.json's), its counter and its record. */
  private journalMac(previous: string, counter: number, name: string, record: ManifestRecord): string {
    return hmac(
      this.macKey,
      JSON.stringify([
        JOURNAL_MAC_LABEL,
        this.keyId,
        previous,
        counter,
        name,
        record.generation,
        record.deleted ? null : (record.digest ?? ''),
      ]),
    );
  }

  private assertKeyId(name: string, stored: StoredVersion | undefined): void {
    if (stored && stored.keyId !== this.keyId) {
      throw new MasterKeyMismatchError(
        `the master key does not match the store: entry "${name}" version ${stored.version} was written with master key id ${stored.keyId}, the key given has id ${this.keyId}`,
      );
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

/**
 * What is wrong with an entry file given what the manifest records of it
 * (`records` undefined: the store has no manifest), or undefined when it may
 * be read. Pure, over plaintext metadata, so that restore can tell which
 * restored files will be refused without the master key.
 */
export function rollbackProblem(
  name: string,
  file: { format: number; generation: number; digest: string },
  records: ReadonlyMap<string, { generation: number; digest?: string; deleted?: boolean }> | undefined,
): string | undefined {
  const { generation } = file;
  if (!records) {
    if (file.format === LEGACY_FORMAT) return undefined;
    return `entry "${name}" is in format ${FORMAT} but the store has no ${MANIFEST_FILE}: the manifest was removed; put it back, or accept the store as it is with \`secretsync store reseal --accept\``;
  }
  const record = records.get(name);
  // Not recorded: written just now (entry first, manifest next), or a format-1 entry never recorded.
  if (!record) return undefined;
  const hint = `put the right file back, delete the entry, or accept this copy with \`secretsync store reseal ${name} --accept\``;
  if (record.deleted) {
    if (generation > record.generation) return undefined;
    return `entry "${name}" was deleted at generation ${record.generation}, and an older copy of its file (generation ${generation}) was put back; ${hint}`;
  }
  if (generation < record.generation) {
    return `entry "${name}" was rolled back: its file holds generation ${generation}, the store manifest records generation ${record.generation}; ${hint}`;
  }
  if (generation === record.generation && file.digest !== record.digest) {
    return `entry "${name}" was replaced: its file differs from the one the store manifest records for generation ${generation}; ${hint}`;
  }
  return undefined;
}

/**
 * The plaintext metadata of a manifest or an entry file, unauthenticated (for
 * restore, which has no master key); undefined when the text is not one.
 */
export function peekManifestRecords(text: string, journal?: string): Map<string, ManifestRecord> | undefined {
  let manifest: Manifest;
  try {
    manifest = parseManifest(text).manifest;
  } catch {
    return undefined;
  }
  // The journal's lines in order, as long as their counters continue manifest.json's (a stale journal's do not).
  for (const text of (journal ?? '').split('\n')) {
    const line = parseJournalLine(text);
    if (!line || line.counter !== manifest.counter + 1) break;
    manifest.records.set(line.name, line.record);
    manifest.counter = line.counter;
  }
  return manifest.records;
}

export function peekEntryFile(text: string): { format: number; generation: number; digest: string } | undefined {
  try {
    const entry = parseEntryFile('(backup)', text);
    return { format: entry.format, generation: entry.generation, digest: sha256Hex(text) };
  } catch {
    return undefined;
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
  if (raw.format !== FORMAT && raw.format !== LEGACY_FORMAT) {
    // Only a plain number is shown: the field may hold anything, of any size.
    const shown = Number.isSafeInteger(raw.format) ? ` ${String(raw.format)}` : '';
    throw corrupt(`unsupported format${shown} (expected ${LEGACY_FORMAT} or ${FORMAT})`);
  }
  // The name is quoted in messages: only one the store could have written is (bounded, one line, not secret).
  if (typeof raw.name !== 'string' || !isEntryName(raw.name)) throw corrupt('no valid entry name');
  if (!Array.isArray(raw.versions) || raw.versions.length === 0) throw corrupt('no versions');
  let previous = 0;
  for (const v of raw.versions as unknown[]) {
    if (
      !isObject(v) ||
      typeof v.version !== 'number' ||
      !Number.isSafeInteger(v.version) ||
      v.version < 1 ||
      typeof v.createdAt !== 'string' ||
      typeof v.keyId !== 'string' ||
      !KEY_ID.test(v.keyId) ||
      !(v.requestToken === undefined || typeof v.requestToken === 'string') ||
      !isSealedJson(v.wrappedKey) ||
      !isSealedJson(v)
    ) {
      throw corrupt('a version is malformed');
    }
    // The store only ever appends higher numbers: anything else was edited.
    if (v.version <= previous) {
      throw new StoreTamperedError(
        `entry "${raw.name}" failed authentication: its versions are out of order (the file was edited)`,
        raw.name,
      );
    }
    previous = v.version;
  }
  if (raw.format === LEGACY_FORMAT) {
    return { format: LEGACY_FORMAT, name: raw.name, generation: 0, versions: raw.versions as StoredVersion[] };
  }
  if (typeof raw.generation !== 'number' || !Number.isSafeInteger(raw.generation) || raw.generation < 1) {
    throw corrupt('no generation');
  }
  if (typeof raw.mac !== 'string') throw corrupt('no mac');
  return {
    format: FORMAT,
    name: raw.name,
    generation: raw.generation,
    versions: raw.versions as StoredVersion[],
    mac: raw.mac,
  };
}

/** A manifest that does not even parse was not written by a store: tampered, not a passing disk fault. */
function parseManifest(text: string): { manifest: Manifest; mac: string } {
  const bad = (why: string) =>
    new StoreTamperedError(`the store manifest ${MANIFEST_FILE} is not a valid manifest (${why}): it was modified`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (!isObject(raw) || raw.format !== FORMAT) throw bad('not a format 2 manifest');
  // The MAC covers what the fields mean, not the bytes: anything the store does not write is refused here,
  // so that a manifest is accepted only as the very JSON the store wrote (the entry files' bytes are pinned by digest).
  if (!hasOnlyKeys(raw, MANIFEST_KEYS)) throw bad('unexpected fields');
  if (
    typeof raw.keyId !== 'string' ||
    !KEY_ID.test(raw.keyId) ||
    typeof raw.mac !== 'string' ||
    !MAC_BASE64.test(raw.mac)
  )
    throw bad('no key id or mac');
  if (typeof raw.counter !== 'number' || !Number.isSafeInteger(raw.counter) || raw.counter < 1) throw bad('no counter');
  if (!Array.isArray(raw.entries)) throw bad('no entries');
  const records = new Map<string, ManifestRecord>();
  for (const e of raw.entries as unknown[]) {
    if (
      !isObject(e) ||
      typeof e.name !== 'string' ||
      !isEntryName(e.name) ||
      records.has(e.name) ||
      typeof e.generation !== 'number' ||
      !Number.isSafeInteger(e.generation) ||
      e.generation < 0
    ) {
      throw bad('an entry is malformed or repeated');
    }
    if (e.deleted === true && hasOnlyKeys(e, TOMBSTONE_KEYS))
      records.set(e.name, { generation: e.generation, deleted: true });
    else if (typeof e.digest === 'string' && SHA256_HEX.test(e.digest) && hasOnlyKeys(e, RECORD_KEYS))
      records.set(e.name, { generation: e.generation, digest: e.digest });
    else throw bad('an entry is malformed or repeated');
  }
  return { manifest: { keyId: raw.keyId, counter: raw.counter, records }, mac: raw.mac };
}

function emptyJournal(head: string): JournalState {
  return { ino: 0, offset: 0, lines: 0, head, stale: false, names: [] };
}

const JOURNAL_KEYS = new Set(['counter', 'name', 'generation', 'digest', 'deleted', 'mac']);

/** One journal line, checked for shape only (the caller checks its MAC); undefined when it is not one. */
function parseJournalLine(
  text: string,
): { counter: number; name: string; record: ManifestRecord; mac: string } | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (
    !isObject(raw) ||
    !hasOnlyKeys(raw, JOURNAL_KEYS) ||
    typeof raw.counter !== 'number' ||
    !Number.isSafeInteger(raw.counter) ||
    typeof raw.name !== 'string' ||
    !isEntryName(raw.name) ||
    typeof raw.generation !== 'number' ||
    !Number.isSafeInteger(raw.generation) ||
    raw.generation < 0 ||
    typeof raw.mac !== 'string' ||
    !MAC_BASE64.test(raw.mac)
  )
    return undefined;
  if (raw.deleted === true && raw.digest === undefined)
    return {
      counter: raw.counter,
      name: raw.name,
      record: { generation: raw.generation, deleted: true },
      mac: raw.mac,
    };
  if (raw.deleted === undefined && typeof raw.digest === 'string' && SHA256_HEX.test(raw.digest))
    return {
      counter: raw.counter,
      name: raw.name,
      record: { generation: raw.generation, digest: raw.digest },
      mac: raw.mac,
    };
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const MANIFEST_KEYS = new Set(['format', 'keyId', 'counter', 'entries', 'mac']);
const RECORD_KEYS = new Set(['name', 'generation', 'digest']);
const TOMBSTONE_KEYS = new Set(['name', 'generation', 'deleted']);

function hasOnlyKeys(v: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  return Object.keys(v).every((k) => allowed.has(k));
}

function isEntryName(name: string): boolean {
  try {
    validateEntryName(name);
    return true;
  } catch {
    return false;
  }
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

function sealedDigest(v: StoredVersion): string {
  const { wrappedKey: k } = v;
  return sha256Hex(JSON.stringify([k.iv, k.tag, k.ciphertext, v.iv, v.tag, v.ciphertext]));
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function hmac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('base64');
}

function macEquals(stored: string, expected: string): boolean {
  const a = Buffer.from(stored, 'base64');
  const b = Buffer.from(expected, 'base64');
  // Node's decoder skips characters it does not know and ignores the spare low bits of the last one:
  // only the canonical text of the MAC is that MAC.
  return a.length === b.length && timingSafeEqual(a, b) && a.toString('base64') === stored;
}

interface FileRead {
  stat: Stats;
  text: string;
  readAt: number;
}

/**
 * The whole of an open file whose size fstat gave: one read where
 * FileHandle.readFile makes three calls (fstat, read, read to find the end).
 * Store files are replaced by rename, never written in place, so the size
 * holds; a longer file (edited in place) is read to its end all the same.
 */
async function readOpenFile(handle: fs.FileHandle, size: number): Promise<string> {
  const chunks: Buffer[] = [];
  let position = 0;
  for (let want = Math.max(size + 1, 1); ; want = 64 * 1024) {
    const buffer = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(buffer, 0, want, position);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    position += bytesRead;
    if (bytesRead < want) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function identityOf(read: FileRead): FileIdentity {
  return { ino: read.stat.ino, mtimeMs: read.stat.mtimeMs, size: read.stat.size, readAt: read.readAt };
}

function sameFile(cached: FileIdentity, stat: Stats): boolean {
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
