// Where change notifications meet the controller: a store's event source (the
// provider's watchChanges) and the signed webhook both say "these entries of
// this store changed"; the router drops exactly those entries from the fetch
// cache and sends only the ManagedSecrets that read them (the ChangeIndex)
// through the queue. It also keeps, per store, whether the event source is
// degraded: the store's EventsDegraded condition and the shorter refresh
// interval its ManagedSecrets use meanwhile are read from here.
import type { AnyStore, Condition } from '../api/types.js';
import type { ChangeIndex } from '../controller/change-index.js';
import type { EventTarget } from '../controller/events.js';
import type { FetchCache } from '../controller/fetch-cache.js';
import { formatDuration, parseDuration } from '../controller/schedule.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import { storeLabel, type ChangeListener, type ProviderClient } from '../providers/provider.js';

/** `events.fallbackRefreshInterval`'s default. */
export const DEFAULT_FALLBACK_REFRESH_MS = 60_000;

export const EVENTS_DEGRADED = 'EventsDegraded';
/** Reasons of EventsDegraded=False and of the Event when events flow again. */
export const EventsReasons = { Flowing: 'EventsFlowing', Recovered: 'EventsRecovered' } as const;

/** The `events` block of a store's provider, whichever provider it is. */
export function eventsSpecOf(store: AnyStore): { fallbackRefreshInterval?: string } | undefined {
  const p = store.spec.provider;
  return p.local?.events ?? p.awsSecretsManager?.events ?? p.awsParameterStore?.events;
}

/** The refresh interval a store's ManagedSecrets fall back to while its events are degraded. */
export function fallbackIntervalMs(store: AnyStore): number {
  const text = eventsSpecOf(store)?.fallbackRefreshInterval;
  if (text === undefined) return DEFAULT_FALLBACK_REFRESH_MS;
  try {
    const ms = parseDuration(text);
    return ms > 0 ? ms : DEFAULT_FALLBACK_REFRESH_MS;
  } catch {
    // The CRD refuses it; an object admitted before the rule falls back to the default.
    return DEFAULT_FALLBACK_REFRESH_MS;
  }
}

export interface ChangeRouterDeps {
  index: ChangeIndex;
  fetchCache: FetchCache;
  /** The store as the cache has it now (by queue key). */
  storeOf(storeKey: string): AnyStore | undefined;
  /** Queue keys of every ManagedSecret that names the store. */
  usersOf(storeKey: string): readonly string[];
  /** The ManagedSecret's values may have changed: read them again now. */
  resync(msKey: string): void;
  /** Look at a ManagedSecret again (its refresh schedule changed), without forcing a read. */
  reschedule(msKey: string): void;
  /** Look at a store again (its EventsDegraded condition changed). */
  recheckStore(storeKey: string): void;
  emit(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): void;
  eventTarget(store: AnyStore): EventTarget;
  log: Logger;
  /** Counts notifications and the ManagedSecrets they sent through the queue. */
  onNotified?(source: string, managedSecrets: number): void;
  /** A store's event source reported a change (after it was applied here): sharded mode relays it to the other replicas. */
  onSourceChange?(storeKey: string, store: AnyStore, keys: readonly string[] | 'all'): void;
}

interface SourceState {
  /** Aborts the provider's watchChanges. */
  stop: AbortController;
  /** The client the source runs on: a source of a replaced client is stopped. */
  client: ProviderClient;
  degraded: { reason: string; message: string } | undefined;
}

export class ChangeRouter {
  private readonly sources = new Map<string, SourceState>();
  /** Stores whose source start was logged at info. */
  private readonly announced = new Set<string>();

  constructor(private readonly deps: ChangeRouterDeps) {}

  /**
   * A client for the store was built: starts its event source when the store
   * declares one (`events`), stopping the one of a client it replaces.
   */
  attach(storeKey: string, store: AnyStore, client: ProviderClient): void {
    this.detach(storeKey);
    if (!eventsSpecOf(store) || !client.watchChanges) return;
    const stop = new AbortController();
    const state: SourceState = { stop, client, degraded: undefined };
    this.sources.set(storeKey, state);
    const live = () => this.sources.get(storeKey) === state && !stop.signal.aborted;
    const listener: ChangeListener = {
      changed: (keys) => {
        if (!live()) return;
        this.changed(storeKey, keys, 'watch');
        this.deps.onSourceChange?.(storeKey, store, keys);
      },
      changedAll: () => {
        if (!live()) return;
        this.changedAll(storeKey);
        this.deps.onSourceChange?.(storeKey, store, 'all');
      },
      degraded: (reason, message) => {
        if (live()) this.setDegraded(storeKey, state, { reason, message });
      },
      flowing: () => {
        if (live()) this.setDegraded(storeKey, state, undefined);
      },
    };
    let started = false;
    try {
      started = client.watchChanges(listener, stop.signal);
    } catch (err) {
      // The contract says it does not throw; a provider bug must not stop the client from being used.
      this.deps.log.warn('event source failed to start', { store: storeLabel(store), error: errorMessage(err) });
      this.setDegraded(storeKey, state, { reason: 'EventSourceFailed', message: 'the event source failed to start' });
      return;
    }
    if (!started) {
      stop.abort();
      this.sources.delete(storeKey);
      return;
    }
    // Clients are rebuilt every few minutes: the first start is news, the restarts are not.
    if (this.announced.has(storeKey)) this.deps.log.debug('event source restarted', { store: storeLabel(store) });
    else {
      this.announced.add(storeKey);
      this.deps.log.info('watching store for changes', { store: storeLabel(store) });
    }
    // The store shows EventsDegraded from now on; a rebuilt client's source changes nothing there.
    if (!store.status?.conditions?.some((c) => c.type === EVENTS_DEGRADED)) this.deps.recheckStore(storeKey);
  }

  /** The store's client was closed (store changed, deleted, or client rebuilt): its event source stops. */
  detach(storeKey: string, client?: ProviderClient): void {
    const state = this.sources.get(storeKey);
    if (!state || (client !== undefined && state.client !== client)) return;
    this.sources.delete(storeKey);
    state.stop.abort();
    // While no source runs, the store is polled on its own schedule: its users look again at it.
    if (state.degraded) for (const key of this.deps.usersOf(storeKey)) this.deps.reschedule(key);
  }

  /** Entries of a store changed: drop them from the fetch cache and sync only the ManagedSecrets that read them. */
  changed(storeKey: string, keys: readonly string[], source: string): number {
    if (keys.length === 0) return 0;
    this.deps.fetchCache.invalidateKeys(storeKey, keys);
    const users = this.deps.index.usersOf(storeKey, keys);
    for (const key of users) this.deps.resync(key);
    this.deps.onNotified?.(source, users.size);
    return users.size;
  }

  /** Anything of the store may have changed: every ManagedSecret of it reads again. */
  changedAll(storeKey: string, source = 'watch'): void {
    this.deps.fetchCache.invalidate(storeKey);
    const users = this.deps.usersOf(storeKey);
    for (const key of users) this.deps.resync(key);
    this.deps.onNotified?.(source, users.length);
  }

  /** While the store's events are degraded: the refresh interval its ManagedSecrets use at most; else undefined. */
  fallbackMs(storeKey: string): number | undefined {
    if (!this.sources.get(storeKey)?.degraded) return undefined;
    const store = this.deps.storeOf(storeKey);
    return store ? fallbackIntervalMs(store) : DEFAULT_FALLBACK_REFRESH_MS;
  }

  /**
   * The store's EventsDegraded condition: True with the source's reason while
   * it fails, False while it runs; undefined when no event source runs for it
   * (the store declares none, or its client is not built yet).
   */
  condition(storeKey: string, store: AnyStore): Omit<Condition, 'lastTransitionTime'> | undefined {
    const state = this.sources.get(storeKey);
    if (!state || !eventsSpecOf(store)) return undefined;
    if (state.degraded)
      return {
        type: EVENTS_DEGRADED,
        status: 'True',
        reason: state.degraded.reason,
        message: `${state.degraded.message}; ManagedSecrets of this store refresh every ${formatDuration(fallbackIntervalMs(store))} until events flow again`,
        observedGeneration: store.metadata.generation,
      };
    return {
      type: EVENTS_DEGRADED,
      status: 'False',
      reason: EventsReasons.Flowing,
      message: 'the event source is running',
      observedGeneration: store.metadata.generation,
    };
  }

  private setDegraded(storeKey: string, state: SourceState, next: SourceState['degraded']): void {
    const was = state.degraded;
    if (was?.reason === next?.reason && was?.message === next?.message) return;
    state.degraded = next;
    const store = this.deps.storeOf(storeKey);
    if (store) {
      const target = this.deps.eventTarget(store);
      if (next) {
        this.deps.emit(target, 'Warning', EVENTS_DEGRADED, `${next.reason}: ${next.message}`);
        this.deps.log.warn('store events degraded', {
          store: storeLabel(store),
          reason: next.reason,
          message: next.message,
        });
      } else {
        this.deps.emit(target, 'Normal', EventsReasons.Recovered, 'events flow again');
        this.deps.log.info('store events flow again', { store: storeLabel(store) });
      }
    }
    this.deps.recheckStore(storeKey);
    // Degraded or back: either way the users' next refresh moves (to the fallback interval, or back to their own).
    if (!was || !next) for (const key of this.deps.usersOf(storeKey)) this.deps.reschedule(key);
  }

  /** Stops every event source (the operator stops). */
  stopAll(): void {
    for (const state of this.sources.values()) state.stop.abort();
    this.sources.clear();
  }
}
