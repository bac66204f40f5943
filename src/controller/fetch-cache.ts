import type { RemoteRef } from '../api/types.js';
import type { FindSpec } from '../api/types.js';
import {
  KeyNotFoundError,
  refKey,
  type CallOptions,
  type FindOptions,
  type Properties,
  type ProviderClient,
} from '../providers/provider.js';
import { raceAbort } from '../api/abort.js';
import { findMayList } from './change-index.js';
import { MAX_FETCH_TTL_MS } from './schedule.js';

export interface FetchCacheOptions {
  /** Most entries kept; the oldest go first. */
  maxEntries?: number;
  /** How long getValue calls wait to be batched into one getValues call. */
  batchWindowMs?: number;
  /** Most refs in one getValues call. */
  maxBatch?: number;
  /** Counts hits (served from cache), shared (joined an in-flight fetch) and misses. */
  onResult?: (result: 'hit' | 'shared' | 'miss') => void;
  /** Entries older than this are never served (no caller asks for a longer TTL): dropped. Default MAX_FETCH_TTL_MS. */
  maxAgeMs?: number;
}

/** Expired entries dropped per read at most: the sweep's cost stays small and spread over the reads. */
const SWEEP_PER_CALL = 64;

interface Entry {
  value: unknown;
  at: number;
}

/** What a cache entry was read for, so that a change event can drop exactly the entries it makes stale. */
type Origin = { storeKey: string; remoteKey: string } | { storeKey: string; find: FindSpec };

interface PendingBatch {
  client: ProviderClient;
  /** The signal of the sync that opened the batch: the batch request runs under its deadline. */
  signal: AbortSignal | undefined;
  refs: Map<string, { ref: RemoteRef; resolve: (v: string | KeyNotFoundError) => void; reject: (e: unknown) => void }>;
  timer: NodeJS.Timeout;
}

/**
 * One backend read per remote key per refresh cycle, however many
 * ManagedSecrets use it: concurrent reads of the same key share one request,
 * results are kept for a TTL the caller chooses (below the shortest refresh
 * interval that uses the key), and single-key reads of a backend that can batch
 * are gathered into one batch request. Missing keys are remembered too.
 * Values live only in memory, bounded by count and time.
 *
 * Deadlines: a shared read runs under the signal of the sync that started it;
 * a sync that joins it stops waiting when its own signal fires. All syncs have
 * the same deadline, so a joiner is never held past its own by the first one.
 */
export class FetchCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly batches = new Map<string, PendingBatch>();
  /** `storeKey\nremoteKey` → cache keys of values and properties read for that remote key. */
  private readonly byRemoteKey = new Map<string, Set<string>>();
  /** Store key → cache keys of its find results, with their specs. */
  private readonly findsByStore = new Map<string, Map<string, FindSpec>>();
  /** Cache key → its origin (for taking it out of the two indexes above). */
  private readonly origins = new Map<string, Origin>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly batchWindowMs: number;
  private readonly maxBatch: number;

  constructor(private readonly options: FetchCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 50_000;
    this.maxAgeMs = options.maxAgeMs ?? MAX_FETCH_TTL_MS;
    this.batchWindowMs = options.batchWindowMs ?? 5;
    this.maxBatch = options.maxBatch ?? 20;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Forgets everything read from one store (its spec changed, or a force-sync asked for fresh values). */
  invalidate(storeKey: string): void {
    const prefix = `${storeKey}\n`;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.drop(key);
    for (const key of this.inFlight.keys()) if (key.startsWith(prefix)) this.drop(key);
  }

  /**
   * Some entries of a store changed (an event): every value, property set and
   * find result read for them is stale, cached or still being read, so the next
   * sync reads them again. Everything else stays. The cost is proportional to
   * the entries dropped plus the store's cached find results.
   */
  invalidateKeys(storeKey: string, keys: readonly string[]): void {
    for (const remoteKey of keys) {
      const cacheKeys = this.byRemoteKey.get(`${storeKey}\n${remoteKey}`);
      if (cacheKeys) for (const key of [...cacheKeys]) this.drop(key);
    }
    const finds = this.findsByStore.get(storeKey);
    if (finds) for (const [key, find] of [...finds]) if (keys.some((k) => findMayList(find, k))) this.drop(key);
  }

  /** Forgets one cache key: its value, a read in flight for it (whose result is then not kept) and its index entries. */
  private drop(key: string): void {
    this.entries.delete(key);
    this.inFlight.delete(key);
    const origin = this.origins.get(key);
    if (!origin) return;
    this.origins.delete(key);
    if ('remoteKey' in origin) {
      const indexKey = `${origin.storeKey}\n${origin.remoteKey}`;
      const set = this.byRemoteKey.get(indexKey);
      set?.delete(key);
      if (set?.size === 0) this.byRemoteKey.delete(indexKey);
    } else {
      const finds = this.findsByStore.get(origin.storeKey);
      finds?.delete(key);
      if (finds?.size === 0) this.findsByStore.delete(origin.storeKey);
    }
  }

  private remember(key: string, origin: Origin): void {
    if (this.origins.has(key)) return;
    this.origins.set(key, origin);
    if ('remoteKey' in origin) {
      const indexKey = `${origin.storeKey}\n${origin.remoteKey}`;
      let set = this.byRemoteKey.get(indexKey);
      if (!set) this.byRemoteKey.set(indexKey, (set = new Set()));
      set.add(key);
    } else {
      let finds = this.findsByStore.get(origin.storeKey);
      if (!finds) this.findsByStore.set(origin.storeKey, (finds = new Map()));
      finds.set(key, origin.find);
    }
  }

  async getValue(
    storeKey: string,
    client: ProviderClient,
    ref: RemoteRef,
    ttlMs: number,
    opts: CallOptions = {},
  ): Promise<string> {
    const result = await this.cached(
      `${storeKey}\nv\n${refKey(ref)}`,
      { storeKey, remoteKey: ref.key },
      ttlMs,
      opts,
      () =>
        client.getValues
          ? this.batched(storeKey, client, ref, opts.signal)
          : client.getValue(ref, opts).catch(keyNotFoundAsValue),
    );
    if (result instanceof KeyNotFoundError) throw result;
    return result as string;
  }

  async getProperties(
    storeKey: string,
    client: ProviderClient,
    key: string,
    version: string | undefined,
    ttlMs: number,
    opts: CallOptions = {},
  ): Promise<Properties> {
    const result = await this.cached(
      `${storeKey}\np\n${JSON.stringify([key, version ?? null])}`,
      { storeKey, remoteKey: key },
      ttlMs,
      opts,
      () => client.getProperties(key, version, opts).catch(keyNotFoundAsValue),
    );
    if (result instanceof KeyNotFoundError) throw result;
    return result as Properties;
  }

  async find(
    storeKey: string,
    client: ProviderClient,
    query: FindSpec,
    ttlMs: number,
    opts: FindOptions = {},
  ): Promise<Map<string, Properties>> {
    return (await this.cached(`${storeKey}\nf\n${JSON.stringify(query)}`, { storeKey, find: query }, ttlMs, opts, () =>
      client.find(query, opts),
    )) as Map<string, Properties>;
  }

  private async cached(
    key: string,
    origin: Origin,
    ttlMs: number,
    opts: CallOptions,
    load: () => Promise<unknown>,
  ): Promise<unknown> {
    const now = Date.now();
    this.sweep(now);
    const entry = this.entries.get(key);
    if (entry && now - entry.at < ttlMs) {
      this.options.onResult?.('hit');
      return entry.value;
    }
    const running = this.inFlight.get(key);
    if (running) {
      this.options.onResult?.('shared');
      return raceAbort(running, opts.signal, 'waiting for a shared backend read');
    }
    this.options.onResult?.('miss');
    const promise: Promise<unknown> = load().then(
      (value) => {
        // Dropped while in flight (a change event): the value may predate the change, so it is not kept.
        if (this.inFlight.get(key) === promise) {
          this.inFlight.delete(key);
          this.store(key, value);
        }
        return value;
      },
      (err: unknown) => {
        if (this.inFlight.get(key) === promise) {
          this.inFlight.delete(key);
          // Nothing cached under the key: its index entries go too (failed reads must not pile up there).
          if (!this.entries.has(key)) this.drop(key);
        }
        throw err;
      },
    );
    this.inFlight.set(key, promise);
    this.remember(key, origin);
    return promise;
  }

  /**
   * Drops entries no caller would be served any more, oldest first (entries
   * are kept in the order they were stored). Without it a cold sync of 50,000
   * left 50,000 values, with their index entries, in memory until the count
   * bound pushed them out: megabytes of plaintext no read could use.
   */
  private sweep(now: number): void {
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (now - entry.at < this.maxAgeMs || dropped++ >= SWEEP_PER_CALL) return;
      // A read of the key in flight keeps its index entries: its result is stored under them.
      if (this.inFlight.has(key)) this.entries.delete(key);
      else this.drop(key);
    }
  }

  private store(key: string, value: unknown): void {
    this.entries.delete(key);
    this.entries.set(key, { value, at: Date.now() });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.drop(oldest.value);
    }
  }

  private batched(
    storeKey: string,
    client: ProviderClient,
    ref: RemoteRef,
    signal: AbortSignal | undefined,
  ): Promise<string | KeyNotFoundError> {
    return new Promise((resolve, reject) => {
      let batch = this.batches.get(storeKey);
      // A batch gathered for another client (the store's client was replaced) goes out now, on its own client.
      if (batch && batch.client !== client) {
        this.flush(storeKey, batch);
        batch = undefined;
      }
      if (!batch) {
        const created: PendingBatch = {
          client,
          signal,
          refs: new Map(),
          timer: setTimeout(() => this.flush(storeKey, created), this.batchWindowMs),
        };
        batch = created;
        this.batches.set(storeKey, batch);
      }
      batch.refs.set(refKey(ref), { ref, resolve, reject });
      if (batch.refs.size >= this.maxBatch) this.flush(storeKey, batch);
    });
  }

  /** Sends one batch; every waiter in it is answered, whatever else happened to the store's batches. */
  private flush(storeKey: string, batch: PendingBatch): void {
    if (this.batches.get(storeKey) === batch) this.batches.delete(storeKey);
    clearTimeout(batch.timer);
    if (batch.refs.size === 0) return;
    const waiting = [...batch.refs.values()];
    batch.refs.clear();
    const getValues = batch.client.getValues?.bind(batch.client);
    if (!getValues) {
      for (const w of waiting) w.reject(new Error('the store client cannot batch reads'));
      return;
    }
    getValues(
      waiting.map((w) => w.ref),
      batch.signal ? { signal: batch.signal } : {},
    ).then(
      (results) => {
        for (const w of waiting) {
          const value = results.get(refKey(w.ref));
          if (value === undefined) w.resolve(new KeyNotFoundError(`key ${w.ref.key} not found`, w.ref.key));
          else w.resolve(value);
        }
      },
      (err: unknown) => {
        for (const w of waiting) w.reject(err);
      },
    );
  }
}

function keyNotFoundAsValue(err: unknown): KeyNotFoundError {
  if (err instanceof KeyNotFoundError) return err;
  throw err;
}
