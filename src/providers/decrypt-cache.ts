// An in-memory cache of what a decrypting backend returned (KMS data keys and
// direct-mode plaintexts, Vault transit plaintexts), bounded by age and count
// (LRU), with concurrent identical loads coalesced into one. One cache per
// store client: a cached result never serves another store, whose credentials
// the backend has not checked. Values are Buffers so that eviction zeroes them.
import { DecryptError } from './provider.js';

export interface DecryptCacheOptions {
  /** How long a result is reused. Default 5 minutes; 0 disables caching (coalescing still applies). */
  ttlMs?: number;
  /** Most results kept; the least recently used goes first. Default 1000. */
  maxEntries?: number;
  /** The clock, for tests. */
  now?: () => number;
}

export interface DecryptCacheStats {
  /** Results held now. */
  size: number;
  /** Served from the cache. */
  hits: number;
  /** Loaded (one KMS call each). */
  misses: number;
  /** Joined a load already in flight instead of making their own call. */
  coalesced: number;
  /** Dropped for age or to make room. */
  evictions: number;
}

export const DEFAULT_CACHE_TTL_MS = 5 * 60_000;
export const DEFAULT_CACHE_MAX_ENTRIES = 1000;

interface Entry {
  value: Buffer;
  expiresAt: number;
}

export class DecryptCache {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Map order is recency order: the first key is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private generation = 0;
  private readonly counters = { hits: 0, misses: 0, coalesced: 0, evictions: 0 };

  constructor(options: DecryptCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_CACHE_TTL_MS;
    this.maxEntries = options.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES;
    this.now = options.now ?? Date.now;
    if (!(this.ttlMs >= 0) || !Number.isInteger(this.maxEntries) || this.maxEntries < 0) {
      throw new Error('cache ttlMs and maxEntries must be non-negative');
    }
  }

  /**
   * The value for `key`: cached, joined to a load in flight, or loaded now.
   * Each caller gets its own copy, which it may zero after use. A failed load
   * is not cached; every caller waiting on it sees the failure.
   */
  async get(key: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      if (entry.expiresAt > this.now()) {
        this.entries.set(key, entry);
        this.counters.hits++;
        return Buffer.from(entry.value);
      }
      this.evict(entry);
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.counters.coalesced++;
      return Buffer.from(await pending);
    }
    this.counters.misses++;
    const generation = this.generation;
    const loading: Promise<Buffer> = (async () => load())().then(
      (value) => {
        if (this.inflight.get(key) === loading) this.inflight.delete(key);
        if (generation === this.generation) this.insert(key, value);
        return value;
      },
      (err: unknown) => {
        if (this.inflight.get(key) === loading) this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, loading);
    return Buffer.from(await loading);
  }

  stats(): DecryptCacheStats {
    return { size: this.entries.size, ...this.counters };
  }

  /** Forgets every result (zeroing what it held); loads in flight finish without being cached. */
  clear(): void {
    this.generation++;
    for (const entry of this.entries.values()) entry.value.fill(0);
    this.entries.clear();
    this.inflight.clear();
  }

  private insert(key: string, value: Buffer): void {
    if (this.ttlMs === 0 || this.maxEntries === 0) return;
    const previous = this.entries.get(key);
    if (previous) {
      this.entries.delete(key);
      previous.value.fill(0);
    }
    const now = this.now();
    // Expired entries first, then the least recently used, until there is room.
    for (const [k, e] of this.entries) {
      if (e.expiresAt > now) continue;
      this.entries.delete(k);
      this.evict(e);
    }
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      const e = this.entries.get(oldest.value);
      this.entries.delete(oldest.value);
      if (e) this.evict(e);
    }
    // A copy of its own, so zeroing on eviction never touches what a caller holds.
    this.entries.set(key, { value: Buffer.from(value), expiresAt: now + this.ttlMs });
  }

  private evict(entry: Entry): void {
    entry.value.fill(0);
    this.counters.evictions++;
  }
}

/**
 * Decrypted bytes as UTF-8 text, zeroing the bytes whatever happens: the one
 * step every decrypting provider ends with. `where` names the resource and key
 * (never the value) for the DecryptError of bytes that are not UTF-8.
 */
export function decodePlaintext(bytes: Buffer, where: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DecryptError(`${where}: the decrypted value is not UTF-8 text`);
  } finally {
    bytes.fill(0);
  }
}

/**
 * Zeroes a shared load's result once it arrives if this caller has given up
 * (its signal aborted): a late result is this caller's copy, and nobody else
 * will zero it.
 */
export function zeroIfAbandoned(load: Promise<Buffer>, signal: AbortSignal | undefined): void {
  if (!signal) return;
  load.then(
    (b) => signal.aborted && b.fill(0),
    () => undefined,
  );
}
