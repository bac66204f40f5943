// In sharded mode a change notification (an SQS message, a webhook delivery)
// reaches one replica, but the ManagedSecrets that read the changed entries may
// be in shards another replica holds, and only that replica's change index
// knows them. The relay passes the notification on through Kubernetes: the
// receiving replica publishes it to one ConfigMap in the operator's namespace
// that every replica watches, and each replica applies the entries it has not
// seen to its own index. No peer protocol, no pod-to-pod traffic.
//
// What lands in the ConfigMap identifies a change and nothing more: the store's
// queue key and, per changed entry, an HMAC (the operator's HMAC key, shared by
// every replica) of store and entry name, never the name itself or a value.
// The object is bounded (the newest `maxEntries` entries, none older than
// `maxAgeMs`); notifications are batched (one write per `batchMs` at most); a
// change that cannot be relayed precisely (too many keys in one batch, a write
// that keeps failing, entries a replica missed) becomes "every ManagedSecret of
// the store looks again": slower, never lost.
import { createHmac, randomBytes } from 'node:crypto';
import { isAlreadyExists, isConflict, isNotFound, type KubeClient, type KubeObject } from '../kube/client.js';
import { errorMessage, type Logger } from '../observability/logger.js';

/** The relay ConfigMap's name (one per operator namespace). */
export const CHANGE_RELAY_NAME = 'secretsync-changes';
/** The store of an entry that says every store may have changed (one batch named too many stores). */
export const EVERY_STORE = '*';
/** The ConfigMap data key that holds the entries (a JSON array). */
export const RELAY_DATA_KEY = 'entries';

/** One relayed notification: a store's changed entries (hashed), or the whole store. */
export interface RelayEntry {
  /** The publishing replica's incarnation (`identity.random`): a restarted Pod is a new publisher. */
  from: string;
  /** Per publisher, 1, 2, 3...: a receiver sees what it missed as a gap. */
  seq: number;
  /** When it was published (ms since the epoch): entries older than maxAgeMs are dropped. */
  at: number;
  /** The store's queue key (`ss/<ns>/<name>` or `css/<name>`), or EVERY_STORE. */
  store: string;
  /** HMACs of the changed entries (see ChangeRelay.hashOf); absent when `all`. */
  keys?: string[];
  /** Anything of the store may have changed. */
  all?: true;
}

/** The relay object as the relay sees it: its entries and the version to write over. */
export interface RelayObject {
  resourceVersion: string;
  entries: RelayEntry[];
}

export type RelayWrite = { ok: true; object: RelayObject } | { ok: false; reason: 'conflict' | 'exists' };

/** The few API calls the relay makes on its object (a ConfigMap in production; a fake in unit tests). */
export interface RelayObjectClient {
  /** The object now; undefined when it does not exist. */
  get(): Promise<RelayObject | undefined>;
  create(entries: RelayEntry[]): Promise<RelayWrite>;
  /** Replaces the entries if the object is still at `resourceVersion` (optimistic concurrency). */
  replace(resourceVersion: string, entries: RelayEntry[]): Promise<RelayWrite>;
}

/** What a replica does with a relayed entry (the manager maps these onto its ChangeRouter). */
export interface RelayTarget {
  /**
   * Entries of a store changed elsewhere: `keys` are the remote keys this
   * replica's index knows whose hash was relayed; `unmatched` says some hash
   * matched none (an entry only a `find` may list, or nothing of this replica's).
   */
  changed(storeKey: string, keys: string[], unmatched: boolean): void;
  /** Anything of the store may have changed. */
  changedAll(storeKey: string): void;
  /** Entries were missed (dropped before this replica saw them), or one batch named too many stores: every store looks again. */
  missed(): void;
  /** The remote keys this replica's ManagedSecrets read by name from the store. */
  keysOf(storeKey: string): Iterable<string>;
  /**
   * Other forms a notification may name a key of this store by (an IBM
   * secret's id, type and name: see ibmRelayForms); default none.
   */
  aliasesOf?(storeKey: string, key: string): readonly string[];
}

/**
 * The forms an IBM Cloud notification relays a secret by. The receiving
 * replica matches them against ibmAliasesOfKey of its own keys: the same
 * rule keysOfNotifiedSecret applies to the index of the replica that received
 * it (a key `<group>/<type>/<name>` of any group, the id in any case, the bare name).
 */
export function ibmRelayForms(secret: { id: string; name?: string }, secretType: string | undefined): string[] {
  const forms = [`ibm-id:${secret.id.toLowerCase()}`];
  if (secret.name !== undefined) {
    forms.push(`ibm-name:${secret.name}`);
    if (secretType !== undefined) forms.push(`ibm-tn:${secretType}/${secret.name}`);
  }
  return forms;
}

/** The relayed forms (ibmRelayForms) under which an IBM store's remote key may be notified. */
export function ibmAliasesOfKey(key: string): string[] {
  const aliases = [`ibm-id:${key.toLowerCase()}`, `ibm-name:${key}`];
  const slash = key.indexOf('/');
  if (slash > 0) aliases.push(`ibm-tn:${key.slice(slash + 1)}`);
  return aliases;
}

export interface ChangeRelayOptions {
  client: RelayObjectClient;
  /** This replica (the Pod name). */
  identity: string;
  /** The operator's HMAC key: every replica loads the same one. */
  hashKey: Buffer;
  target: RelayTarget;
  log: Logger;
  /** Entries kept in the object (default 256). */
  maxEntries?: number;
  /** Entries older than this are dropped (default 5 minutes). */
  maxAgeMs?: number;
  /** At most one write per this many ms per replica (default 100). */
  batchMs?: number;
  /** A store's batch with more changed entries than this is relayed as the whole store (default 64). */
  maxKeysPerEntry?: number;
  /** Writes tried per batch before it falls back to whole stores and waits (default 5). */
  maxAttempts?: number;
  /** Longest wait before a failed batch is tried again (default 5 s). */
  maxRetryDelayMs?: number;
  now?: () => number;
  /** Counts what the relay does (published/applied entries, fallbacks). */
  onEvent?: (what: 'published' | 'applied' | 'fallback' | 'missed' | 'write_failed') => void;
}

interface Pending {
  keys: Set<string>;
  all: boolean;
}

/** Parses the ConfigMap's entries, keeping only well-formed ones (the object is writable by anyone with the Role). */
export function parseRelayEntries(text: string | undefined): RelayEntry[] {
  if (text === undefined || text === '') return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  const out: RelayEntry[] = [];
  for (const e of raw as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const r = e as Record<string, unknown>;
    if (typeof r.from !== 'string' || typeof r.seq !== 'number' || typeof r.at !== 'number') continue;
    if (typeof r.store !== 'string') continue;
    const keys = Array.isArray(r.keys) ? r.keys.filter((k): k is string => typeof k === 'string') : undefined;
    if (r.all === true) out.push({ from: r.from, seq: r.seq, at: r.at, store: r.store, all: true });
    else if (keys) out.push({ from: r.from, seq: r.seq, at: r.at, store: r.store, keys });
  }
  return out;
}

export class ChangeRelay {
  /** This incarnation: entries it published are not applied back to itself. */
  readonly from: string;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private lastWrite = 0;
  private failures = 0;
  /** The object as last seen (watch or our own write): the base of the next write. */
  private latest: RelayObject | undefined;
  /**
   * Per publisher, the highest seq applied (or seen at start), and when it was
   * last in the object: kept a while after its entries left the object (other
   * publishers' entries may push them out), so that a gap is still noticed.
   */
  private readonly applied = new Map<string, { seq: number; seenAt: number }>();
  /** Until start(): what is observed is the past, not applied. */
  private live = false;
  private stopped = false;
  /** hash input → hash, for the receiver's index keys (cleared when large). */
  private readonly hashes = new Map<string, string>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly batchMs: number;
  private readonly maxKeysPerEntry: number;
  private readonly maxAttempts: number;
  private readonly maxRetryDelayMs: number;
  private readonly now: () => number;

  constructor(private readonly options: ChangeRelayOptions) {
    this.from = `${options.identity}.${randomBytes(4).toString('hex')}`;
    this.maxEntries = options.maxEntries ?? 256;
    this.maxAgeMs = options.maxAgeMs ?? 5 * 60_000;
    this.batchMs = options.batchMs ?? 100;
    this.maxKeysPerEntry = options.maxKeysPerEntry ?? 64;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;
    this.now = options.now ?? Date.now;
  }

  /** The relayed form of a store's entry name: 16 bytes of HMAC-SHA256, base64url (the name stays here). */
  hashOf(storeKey: string, key: string): string {
    return createHmac('sha256', this.options.hashKey)
      .update(`${storeKey}\n${key}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }

  /** Relays that entries of a store changed (after this replica applied them to its own index). */
  publish(storeKey: string, keys: readonly string[]): void {
    if (this.stopped || keys.length === 0) return;
    const p = this.pendingOf(storeKey);
    if (!p.all) for (const k of keys) p.keys.add(this.hashOf(storeKey, k));
    if (p.keys.size > this.maxKeysPerEntry) this.markAll(p, true);
    this.schedule();
  }

  /** Relays that anything of a store may have changed. */
  publishAll(storeKey: string): void {
    if (this.stopped) return;
    this.markAll(this.pendingOf(storeKey), false);
    this.schedule();
  }

  /** The relay object changed (informer add/update; undefined: deleted). */
  observe(object: RelayObject | undefined): void {
    // Versions are opaque: the newest is the one just seen, unless our own write has already moved past it.
    this.latest = object;
    if (!object) return;
    const byPublisher = new Map<string, RelayEntry[]>();
    for (const e of object.entries) {
      let list = byPublisher.get(e.from);
      if (!list) byPublisher.set(e.from, (list = []));
      list.push(e);
    }
    const now = this.now();
    // Publishers not heard of for a long time (stopped replicas): nothing more to compare against.
    for (const [from, state] of this.applied)
      if (!byPublisher.has(from) && now - state.seenAt > 2 * this.maxAgeMs) this.applied.delete(from);
    let missed = false;
    for (const [from, entries] of byPublisher) {
      entries.sort((a, b) => a.seq - b.seq);
      const last = this.applied.get(from)?.seq;
      const newest = entries[entries.length - 1]!.seq;
      if (from !== this.from && this.live) {
        // The oldest entry here follows one this replica never saw: it left the object meanwhile.
        if (last !== undefined && entries[0]!.seq > last + 1) missed = true;
        for (const e of entries) if (last === undefined || e.seq > last) this.apply(e);
      }
      this.applied.set(from, { seq: Math.max(last ?? 0, newest), seenAt: now });
    }
    if (missed) {
      this.options.onEvent?.('missed');
      this.options.log.warn('change relay: entries were dropped before this replica saw them; every store looks again');
      this.options.target.missed();
    }
  }

  /** What was observed until now is the past; entries from here on are applied. */
  start(): void {
    this.live = true;
  }

  /** Writes what is pending once more (best effort), then stops. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    if (this.pending.size > 0 && this.failures === 0) await this.flush();
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private pendingOf(storeKey: string): Pending {
    let p = this.pending.get(storeKey);
    if (!p) this.pending.set(storeKey, (p = { keys: new Set(), all: false }));
    return p;
  }

  /** The store is relayed whole; `fallback`: because a precise relay was not possible (counted). */
  private markAll(p: Pending, fallback: boolean): void {
    if (!p.all && fallback) this.options.onEvent?.('fallback');
    p.all = true;
    p.keys.clear();
  }

  private schedule(): void {
    if (this.timer || this.flushing || this.stopped) return;
    const since = this.now() - this.lastWrite;
    const backoff = this.failures === 0 ? 0 : Math.min(this.maxRetryDelayMs, this.batchMs * 2 ** this.failures);
    const wait = Math.max(0, this.batchMs - since, backoff);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        if (this.pending.size > 0) this.schedule();
      });
    }, wait);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending.clear();
    const at = this.now();
    const seqBefore = this.seq;
    // A batch of many stores would push out of the ring entries the other replicas may not have read yet:
    // one entry for every store instead (they all look again, as after a gap).
    const tooMany = batch.length > this.maxEntries / 4;
    if (tooMany) this.options.onEvent?.('fallback');
    const entries: RelayEntry[] = tooMany
      ? [{ from: this.from, seq: ++this.seq, at, store: EVERY_STORE, all: true }]
      : batch.map(([store, p]) =>
          p.all
            ? { from: this.from, seq: ++this.seq, at, store, all: true }
            : { from: this.from, seq: ++this.seq, at, store, keys: [...p.keys] },
        );
    this.lastWrite = at;
    try {
      for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
        const base = attempt === 0 ? this.latest : await this.options.client.get();
        const result = base
          ? await this.options.client.replace(base.resourceVersion, this.merge(base.entries, entries))
          : await this.options.client.create(this.merge([], entries));
        if (result.ok) {
          this.latest = result.object;
          this.failures = 0;
          for (let i = 0; i < entries.length; i++) this.options.onEvent?.('published');
          return;
        }
        // 409: another replica wrote first (or created it): read it again (after a short random wait, so that
        // replicas that collided do not collide again) and write over the new version.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
      }
      throw new Error(`still conflicting after ${this.maxAttempts} attempts`);
    } catch (err) {
      // The retry takes the same numbers: receivers must not see a gap where nothing was lost. Had the write
      // landed after all (a timeout), they applied it and skip the retry's entries of those numbers.
      this.seq = seqBefore;
      this.failures += 1;
      this.options.onEvent?.('write_failed');
      this.options.log.warn('change relay: could not publish; the stores concerned are relayed whole on the next try', {
        stores: batch.length,
        error: errorMessage(err),
      });
      // Whatever was in this batch is sent again, as whole stores: a precise list may have been half written.
      for (const [store, p] of batch) this.markAll(this.pendingOf(store), !p.all);
    }
  }

  /** The entries to write: the current ones not expired, then ours, the newest maxEntries of them. */
  private merge(current: RelayEntry[], ours: RelayEntry[]): RelayEntry[] {
    const oldest = this.now() - this.maxAgeMs;
    const kept = current.filter((e) => e.at >= oldest);
    const all = [...kept, ...ours];
    return all.length > this.maxEntries ? all.slice(all.length - this.maxEntries) : all;
  }

  private apply(e: RelayEntry): void {
    this.options.onEvent?.('applied');
    if (e.store === EVERY_STORE) {
      this.options.target.missed();
      return;
    }
    if (e.all || !e.keys) {
      this.options.target.changedAll(e.store);
      return;
    }
    const wanted = new Set(e.keys);
    const matched = new Set<string>();
    const keys: string[] = [];
    if (this.hashes.size > 200_000) this.hashes.clear();
    const aliasesOf = this.options.target.aliasesOf;
    for (const k of this.options.target.keysOf(e.store)) {
      // One alias (an IBM secret's type and name) may name several keys: every one of them is matched.
      for (const form of aliasesOf ? [k, ...aliasesOf(e.store, k)] : [k]) {
        const h = this.cachedHash(e.store, form);
        if (!wanted.has(h)) continue;
        matched.add(h);
        keys.push(k);
        break;
      }
      if (!aliasesOf && matched.size === wanted.size) break;
    }
    this.options.target.changed(e.store, keys, matched.size < wanted.size);
  }

  private cachedHash(storeKey: string, key: string): string {
    const input = `${storeKey}\n${key}`;
    let h = this.hashes.get(input);
    if (h === undefined) this.hashes.set(input, (h = this.hashOf(storeKey, key)));
    return h;
  }
}

/** A relay object as the informer (or an API answer) has it. */
export function relayObjectOf(obj: KubeObject): RelayObject {
  const data = (obj as KubeObject & { data?: Record<string, string> }).data;
  return { resourceVersion: obj.metadata.resourceVersion ?? '', entries: parseRelayEntries(data?.[RELAY_DATA_KEY]) };
}

/** The relay's calls on its ConfigMap through the Kubernetes API. */
export function configMapRelayClient(
  client: KubeClient,
  namespace: string,
  name = CHANGE_RELAY_NAME,
): RelayObjectClient {
  const collection = `/api/v1/namespaces/${namespace}/configmaps`;
  const body = (entries: RelayEntry[], resourceVersion?: string) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      labels: { 'app.kubernetes.io/managed-by': 'secretsync' },
    },
    data: { [RELAY_DATA_KEY]: JSON.stringify(entries) },
  });
  return {
    async get() {
      try {
        return relayObjectOf(await client.get<KubeObject>(`${collection}/${name}`));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async create(entries) {
      try {
        return {
          ok: true,
          object: relayObjectOf(await client.request<KubeObject>('POST', collection, { body: body(entries) })),
        };
      } catch (err) {
        if (isAlreadyExists(err)) return { ok: false, reason: 'exists' };
        throw err;
      }
    },
    async replace(resourceVersion, entries) {
      try {
        const put = await client.request<KubeObject>('PUT', `${collection}/${name}`, {
          body: body(entries, resourceVersion),
        });
        return { ok: true, object: relayObjectOf(put) };
      } catch (err) {
        if (isConflict(err)) return { ok: false, reason: 'conflict' };
        throw err;
      }
    },
  };
}
