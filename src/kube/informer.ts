// The operator's caches: a list-then-watch copy of one collection that stays
// current through stream ends, expired versions, broken and silent
// connections, with every wait bounded (see the options' time bounds).
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isSecretsyncError } from '../api/errors.js';
import { KubeApiError, WatchIdleError, type KubeClient, type KubeObject } from './client.js';

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions<T extends KubeObject> {
  /** Collection path, e.g. `/api/v1/secrets` or `/apis/secretsync.io/v1alpha1/namespaces/x/managedsecrets`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Trims what the cache keeps (say, managedFields), so memory grows only with what we use. */
  transform?: (obj: KubeObject) => T;
  /** Reports watch failures (already retried); never contains object contents. */
  onError?: (err: unknown) => void;
  /**
   * Told when a watch that brought nothing within the idle timeout was
   * restarted. Not a failure, so not `onError`: the API server sends a
   * collection's watchers a bookmark only once something of its kind changed
   * (or etcd reported progress, every 10 minutes by default), so a quiet kind
   * restarts its watch every idle timeout. A dead connection shows up as the
   * restarted watch's failure, through `onError`.
   */
  onWatchIdle?: (err: WatchIdleError) => void;
  /**
   * A watch that brings nothing (no event, no bookmark) for this long is
   * restarted from the last version seen. Default: the client's
   * `watchIdleTimeoutMs` (90 s; the API server sends a bookmark about once a minute).
   */
  watchIdleTimeoutMs?: number;
  /** Deadline of each page of a list. Default: the client's `requestTimeoutMs`. */
  listPageTimeoutMs?: number;
  /** Objects in one page of a list (default 500): smaller for kinds whose objects a namespace may make large. */
  listPageSize?: number;
  /** First back-off after a failed watch (default 250 ms), doubled per failure with jitter. */
  retryBaseDelayMs?: number;
  /** Longest back-off after failed watches (default 30 s). */
  retryMaxDelayMs?: number;
}

/** Longest stretch of a re-list's cache updates between two turns of the event loop. */
const APPLY_SLICE_MS = 10;

/** Yields a turn of the event loop once APPLY_SLICE_MS have passed since the last one. */
class Slices {
  private start = performance.now();
  async next(): Promise<void> {
    if (performance.now() - this.start < APPLY_SLICE_MS) return;
    await nextTurn();
    this.start = performance.now();
  }
}

export const objectKey = (obj: KubeObject): string =>
  obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;

/**
 * List-then-watch cache of one collection: lists (paged), then watches from
 * the list's resourceVersion with bookmarks, re-watches when the server ends a
 * stream, and re-lists (diffing against the cache) when the version expired.
 */
/**
 * One copy of the strings that tens of thousands of cached objects repeat
 * (namespace, apiVersion, kind, creation times to the second): JSON.parse
 * makes a new string for every value, about 35 bytes each. Bounded: once
 * full, new values are kept as they came.
 */
const interned = new Map<string, string>();
const MAX_INTERNED = 20_000;

export function intern(value: string): string {
  const known = interned.get(value);
  if (known !== undefined) return known;
  if (interned.size < MAX_INTERNED) interned.set(value, value);
  return value;
}

function internCommonFields(obj: KubeObject): void {
  const meta = obj.metadata;
  const o = obj as { apiVersion?: unknown; kind?: unknown };
  if (typeof o.apiVersion === 'string') o.apiVersion = intern(o.apiVersion);
  if (typeof o.kind === 'string') o.kind = intern(o.kind);
  if (typeof meta.namespace === 'string') meta.namespace = intern(meta.namespace);
  if (typeof meta.creationTimestamp === 'string') meta.creationTimestamp = intern(meta.creationTimestamp);
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly abort = new AbortController();
  private resourceVersion = '';
  private synced = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly options: InformerOptions<T>,
  ) {}

  on(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get size(): number {
    return this.cache.size;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list is in the cache; watching goes on in the background. */
  async start(): Promise<void> {
    await this.relist();
    this.synced = true;
    this.running = this.watchLoop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private selectors(): Record<string, string | undefined> {
    return { labelSelector: this.options.labelSelector, fieldSelector: this.options.fieldSelector };
  }

  private transform(obj: KubeObject): T {
    // Never read by a cache user, and often the largest part of an object. Left out of a copy rather than
    // deleted: V8 keeps an object whose property was deleted (other than its last) as a hash table, about
    // 350 bytes more per object (measured), 35 MiB for the ManagedSecrets and Secrets of 50,000.
    if (obj.metadata.managedFields !== undefined) {
      const { managedFields: _dropped, ...metadata } = obj.metadata;
      obj.metadata = metadata;
    }
    internCommonFields(obj);
    return this.options.transform ? this.options.transform(obj) : (obj as T);
  }

  private async relist(): Promise<void> {
    const listed = await this.client.list<KubeObject, T>(this.options.path, this.selectors(), {
      signal: this.abort.signal,
      timeoutMs: this.options.listPageTimeoutMs,
      ...(this.options.listPageSize !== undefined ? { pageSize: this.options.listPageSize } : {}),
      map: (raw) => this.transform(raw),
    });
    const seen = new Set<string>();
    // Tens of thousands of objects and their handlers (queueing each) take over 100 ms: a turn of the event
    // loop every APPLY_SLICE_MS lets timers (Lease renewals) and other work in. No watch of this informer
    // runs meanwhile; a reader may see the cache half way, as it would while watch events arrive.
    const slices = new Slices();
    for (const obj of listed.items) {
      const key = objectKey(obj);
      seen.add(key);
      this.apply(key, obj);
      await slices.next();
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        for (const h of this.handlers) h.delete?.(old);
      }
      await slices.next();
    }
    this.resourceVersion = listed.metadata.resourceVersion ?? '';
  }

  private apply(key: string, obj: T): void {
    const old = this.cache.get(key);
    this.cache.set(key, obj);
    if (!old) for (const h of this.handlers) h.add?.(obj);
    else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion)
      for (const h of this.handlers) h.update?.(old, obj);
  }

  private async watchLoop(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        let expired = false;
        await this.client.watch(
          this.options.path,
          {
            ...this.selectors(),
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: 240 + Math.floor(Math.random() * 120),
          },
          (type, raw) => {
            if (type === 'ERROR') {
              const status = raw as unknown as { code?: number };
              if (status.code === 410) expired = true;
              return;
            }
            if (raw.metadata.resourceVersion) this.resourceVersion = raw.metadata.resourceVersion;
            if (type === 'BOOKMARK') return;
            const obj = this.transform(raw);
            const key = objectKey(obj);
            if (type === 'DELETED') {
              const old = this.cache.get(key);
              this.cache.delete(key);
              for (const h of this.handlers) h.delete?.(old ?? obj);
            } else {
              this.apply(key, obj);
            }
          },
          this.abort.signal,
          { idleTimeoutMs: this.options.watchIdleTimeoutMs },
        );
        if (expired) await this.relist();
        failures = 0;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (err instanceof WatchIdleError) {
          // A silent connection (half-open, or a quiet kind): watch again from the last version seen, at
          // once; if the server is really gone, that watch fails, is reported, and backs off below.
          this.options.onWatchIdle?.(err);
          continue;
        }
        this.options.onError?.(err);
        failures += 1;
        if (err instanceof KubeApiError && err.status === 410) {
          await this.relistQuietly();
        } else {
          // Back off (at least as long as the server asked), then re-list: events may have been missed.
          const base = this.options.retryBaseDelayMs ?? 250;
          const backoff = Math.min(this.options.retryMaxDelayMs ?? 30_000, base * 2 ** Math.min(failures, 7));
          const retryAfterMs = isSecretsyncError(err) ? (err.retryAfterMs ?? 0) : 0;
          await this.sleep(Math.max(backoff * (0.5 + Math.random() / 2), retryAfterMs));
          await this.relistQuietly();
        }
      }
    }
  }

  private async relistQuietly(): Promise<void> {
    try {
      await this.relist();
    } catch (err) {
      if (!this.abort.signal.aborted) this.options.onError?.(err);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve();
      };
      // The listener goes when the timer fires, or back-offs would pile listeners onto the signal.
      const timer = setTimeout(() => {
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
