// One provider client per store, built through the provider contract and kept
// while it is usable: its credentials, STS session and KMS data-key cache are
// worth keeping, so a client is rebuilt only when the store changes, when it is
// old enough that its credentials should be read again, or when an error says
// the client itself is unusable, never for an ordinary backend failure.
import { errorInfo } from '../api/errors.js';
import type { AnyStore } from '../api/types.js';
import type { KubeClient } from '../kube/client.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  storeLabel,
  type CallOptions,
  type ProviderClient,
  type ProviderContext,
  type ProviderTimeouts,
  type StorePolicy,
} from '../providers/provider.js';
import { providerFor } from '../providers/registry.js';
import { providerContext } from './provider-context.js';
import { deadline, raceAbort } from '../api/abort.js';

export interface StoreClientsOptions {
  client: KubeClient;
  metrics: Metrics;
  log: Logger;
  /** How long a client (and the master key or credentials it read) is reused. */
  clientTtlMs: number;
  /** Deadline of one connect (shared by every sync waiting for it). */
  connectTimeoutMs: number;
  allowOperatorIdentityForNamespacedStores: boolean;
  policy: StorePolicy;
  /** Connect and per-attempt timeouts every backend client gets. */
  timeouts: ProviderTimeouts;
  /** Fires when the operator stops: pending connects are abandoned. */
  stopSignal: AbortSignal;
  /** A client was built for the store and is in use from now on (the events router starts its source). */
  onClient?(storeKey: string, store: AnyStore, client: ProviderClient): void;
  /** The store's client was closed (the events router stops its source). */
  onClose?(storeKey: string, client: ProviderClient): void;
}

interface Entry {
  client: ProviderClient;
  provider: string;
  generation: number;
  at: number;
}

/** Wraps a provider client so that every real backend call is counted and timed (cache hits are not). */
function meteredClient(
  client: ProviderClient,
  observe: <T>(operation: string, call: () => Promise<T>) => Promise<T>,
): ProviderClient {
  const metered: ProviderClient = {
    getValue: (ref, opts) => observe('getValue', () => client.getValue(ref, opts)),
    getProperties: (key, version, opts) => observe('getProperties', () => client.getProperties(key, version, opts)),
    find: (query, opts) => observe('find', () => client.find(query, opts)),
    check: (opts) => observe('check', () => client.check(opts)),
    close: () => client.close(),
  };
  const servedRegion = client.servedRegion?.bind(client);
  if (servedRegion) metered.servedRegion = servedRegion;
  const getValues = client.getValues?.bind(client);
  if (getValues) metered.getValues = (refs, opts) => observe('getValues', () => getValues(refs, opts));
  const decrypt = client.decrypt?.bind(client);
  if (decrypt) metered.decrypt = decrypt;
  // Not a backend request: the source counts its own (queue polls) through the provider context.
  const watchChanges = client.watchChanges?.bind(client);
  if (watchChanges) metered.watchChanges = watchChanges;
  const putValue = client.putValue?.bind(client);
  if (putValue) metered.putValue = (ref, value, opts) => observe('putValue', () => putValue(ref, value, opts));
  // Issued credentials (src/controller/issued.ts).
  const issue = client.issue?.bind(client);
  if (issue) metered.issue = (req, opts) => observe('issue', () => issue(req, opts));
  const renewLease = client.renewLease?.bind(client);
  if (renewLease) metered.renewLease = (id, inc, opts) => observe('renewLease', () => renewLease(id, inc, opts));
  const revokeLease = client.revokeLease?.bind(client);
  if (revokeLease) metered.revokeLease = (id, opts) => observe('revokeLease', () => revokeLease(id, opts));
  return metered;
}

export class StoreClients {
  private readonly clients = new Map<string, Entry>();
  private readonly connecting = new Map<string, { generation: number; promise: Promise<Entry> }>();

  constructor(private readonly options: StoreClientsOptions) {}

  /** The store's client: the one in use, one being built, or a new one. */
  async get(storeKey: string, store: AnyStore, opts: CallOptions = {}): Promise<ProviderClient> {
    const generation = store.metadata.generation ?? 0;
    const cached = this.clients.get(storeKey);
    if (cached && cached.generation === generation && Date.now() - cached.at < this.options.clientTtlMs)
      return cached.client;
    // Syncs that find no client at the same moment share one connect (one client, one KMS data-key cache).
    const pending = this.connecting.get(storeKey);
    if (pending && pending.generation === generation)
      return (await raceAbort(pending.promise, opts.signal, `connecting to ${storeLabel(store)}`)).client;
    const promise = this.connect(storeKey, store);
    this.connecting.set(storeKey, { generation, promise });
    const forget = () => {
      if (this.connecting.get(storeKey)?.promise === promise) this.connecting.delete(storeKey);
    };
    promise.then(forget, forget);
    return (await raceAbort(promise, opts.signal, `connecting to ${storeLabel(store)}`)).client;
  }

  private async connect(storeKey: string, store: AnyStore): Promise<Entry> {
    const provider = providerFor(store.spec.provider);
    const observe = <T>(operation: string, call: () => Promise<T>) =>
      this.options.metrics.observeProvider(provider.name, operation, call);
    const limit = deadline(this.options.connectTimeoutMs, this.options.stopSignal);
    let raw: ProviderClient;
    try {
      raw = await observe('connect', () =>
        provider.connect(store, this.context(store, provider.name), { signal: limit.signal }),
      );
    } finally {
      limit.dispose();
    }
    const entry: Entry = {
      client: meteredClient(raw, observe),
      provider: provider.name,
      generation: store.metadata.generation ?? 0,
      at: Date.now(),
    };
    // A client built for an older generation that finished late must not replace a newer one.
    const current = this.clients.get(storeKey);
    if (current && current.generation > entry.generation) {
      raw.close().catch(() => undefined);
      return current;
    }
    if (current) this.close(storeKey, current.client);
    this.clients.set(storeKey, entry);
    this.options.onClient?.(storeKey, store, entry.client);
    return entry;
  }

  private context(store: AnyStore, provider: string): ProviderContext {
    const { metrics } = this.options;
    return providerContext({
      client: this.options.client,
      store,
      policy: this.options.policy,
      timeouts: this.options.timeouts,
      allowOperatorIdentityForNamespacedStores: this.options.allowOperatorIdentityForNamespacedStores,
      observe: (operation, call, region, endpoint) =>
        metrics.observeProvider(provider, operation, call, region, endpoint),
      onFailover: (e) =>
        metrics.failovers.inc({ provider: e.provider, store: e.store, from_region: e.from, to_region: e.to }),
      log: (level, message, fields) => this.options.log[level](message, { provider, ...fields }),
      countEventMessages: (outcome, count) =>
        metrics.eventSourceMessages.inc({ provider, store: storeLabel(store), outcome }, count),
    });
  }

  /** After a failed call: the client goes only when the error says it cannot be used again. */
  afterError(storeKey: string, err: unknown): void {
    const info = errorInfo(err, '');
    if (info.clientUnusable) this.drop(storeKey, `the client is unusable (${info.reason})`);
  }

  /** The store changed or went away: its client is closed; a deleted store is forgotten by its provider too. */
  drop(storeKey: string, why: string, deleted?: AnyStore): void {
    const cached = this.clients.get(storeKey);
    this.clients.delete(storeKey);
    if (cached) {
      // Which of the reasons above closed it: a reconnect per failure would show here first.
      this.options.log.debug('store client closed', { store: storeKey, why });
      this.close(storeKey, cached.client);
    }
    if (deleted) {
      try {
        providerFor(deleted.spec.provider).forgetStore?.(deleted);
      } catch {
        // A store whose provider block is unusable has nothing to forget.
      }
    }
  }

  private close(storeKey: string, client: ProviderClient): void {
    this.options.onClose?.(storeKey, client);
    client.close().catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.clients].map(([storeKey, c]) => {
        this.options.onClose?.(storeKey, c.client);
        return c.client.close().catch(() => undefined);
      }),
    );
    this.clients.clear();
  }
}
