// The store reconciler (SecretStore and ClusterSecretStore). One pass: read the
// store; check it through its provider client (a real reachability and
// credentials check); record Ready, and with regional failover the Failover
// condition and the active region; then emit what changed and look again at
// the next check interval.
import { errorInfo } from '../api/errors.js';
import { Reasons, type AnyStore, type Condition, type StoreStatus } from '../api/types.js';
import { isNotFound } from '../kube/client.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import { storeLabel, type ServedRegion } from '../providers/provider.js';
import type { ClusterCache } from './caches.js';
import { setCondition } from './conditions.js';
import type { EventRecorder, EventTarget } from './events.js';
import { describePlace, failoverStatus, hasFailoverCondition, type RegionMove } from './failover-status.js';
import { deadline } from '../api/abort.js';
import type { StatusWriter } from './status.js';
import type { StoreClients } from './store-clients.js';
import type { WorkQueue } from './workqueue.js';

export interface StoreReconcilerDeps {
  caches: ClusterCache;
  clients: StoreClients;
  status: StatusWriter;
  events: EventRecorder;
  queue: WorkQueue;
  log: Logger;
  eventTarget(store: AnyStore): EventTarget;
  stopSignal: AbortSignal;
  /** How often a store's Ready condition is checked again. */
  checkIntervalMs: number;
  /** Deadline of one check. */
  checkTimeoutMs: number;
  /** The store's EventsDegraded condition while an event source runs for it (see src/events/change-router.ts). */
  eventsCondition?(storeKey: string, store: AnyStore): Omit<Condition, 'lastTransitionTime'> | undefined;
}

type StatusPatch = Omit<StoreStatus, 'activeRegion' | 'activeEndpoint'> & {
  activeRegion?: string | null;
  activeEndpoint?: string | null;
};

/** The status a check leads to (pure): Ready, Failover, the active place; and the move to announce, if any. */
export function planStoreStatus(
  store: AnyStore,
  ready: Omit<Condition, 'lastTransitionTime'>,
  served: ServedRegion | undefined,
  events?: Omit<Condition, 'lastTransitionTime'>,
): { patch: StatusPatch | undefined; move: RegionMove | undefined } {
  let { conditions, changed } = setCondition(store.status?.conditions, ready);
  if (events) {
    const set = setCondition(conditions, events);
    conditions = set.conditions;
    changed = changed || set.changed;
  } else if (!hasEventsSpec(store) && conditions.some((c) => c.type === 'EventsDegraded')) {
    // The store no longer declares events: the condition goes.
    conditions = conditions.filter((c) => c.type !== 'EventsDegraded');
    changed = true;
  }
  let activeRegion: string | null | undefined = store.status?.activeRegion;
  let activeEndpoint: string | null | undefined = store.status?.activeEndpoint;
  let move: RegionMove | undefined;
  if (served) {
    const failover = failoverStatus(store, served);
    const set = setCondition(conditions, failover.condition);
    conditions = set.conditions;
    changed = changed || set.changed || failover.changed;
    activeRegion = served.region;
    activeEndpoint = served.endpoint ?? (activeEndpoint !== undefined ? null : undefined);
    move = failover.move;
  } else if (
    ready.status === 'True' &&
    (activeRegion !== undefined || activeEndpoint !== undefined || hasFailoverCondition(conditions))
  ) {
    // No failover (any more), on a healthy store: the Failover condition and the active place go.
    conditions = conditions.filter((c) => c.type !== 'Failover');
    changed = true;
    activeRegion = activeRegion !== undefined ? null : undefined;
    activeEndpoint = activeEndpoint !== undefined ? null : undefined;
  }
  if (!changed && store.status?.observedGeneration === store.metadata.generation) return { patch: undefined, move };
  return {
    patch: {
      conditions,
      observedGeneration: store.metadata.generation,
      // null: a merge patch removes the field.
      ...(activeRegion !== undefined ? { activeRegion } : {}),
      ...(activeEndpoint !== undefined ? { activeEndpoint } : {}),
    },
    move,
  };
}

function hasEventsSpec(store: AnyStore): boolean {
  const p = store.spec.provider;
  return !!(p.local?.events ?? p.awsSecretsManager?.events ?? p.awsParameterStore?.events);
}

export class StoreReconciler {
  constructor(private readonly deps: StoreReconcilerDeps) {}

  async reconcile(key: string): Promise<void> {
    const store = this.deps.caches.store(key);
    if (!store) {
      this.deps.clients.drop(key, 'the store is gone');
      return;
    }
    const limit = deadline(this.deps.checkTimeoutMs, this.deps.stopSignal);
    try {
      await this.pass(key, store, limit.signal);
    } finally {
      limit.dispose();
    }
    this.deps.queue.addAfter(key, this.deps.checkIntervalMs);
  }

  private async pass(key: string, store: AnyStore, signal: AbortSignal): Promise<void> {
    const name = storeLabel(store);

    // Check.
    let ready: Omit<Condition, 'lastTransitionTime'>;
    let served: ServedRegion | undefined;
    try {
      const client = await this.deps.clients.get(key, store, { signal });
      await client.check({ signal });
      served = client.servedRegion?.();
      const via =
        served && !served.primary
          ? ` (served by failover ${served.endpoint !== undefined ? 'endpoint' : 'region'} ${describePlace(served.region, served.endpoint)})`
          : '';
      ready = {
        type: 'Ready',
        status: 'True',
        reason: Reasons.Valid,
        message: `store is reachable and its credentials are valid${via}`,
      };
    } catch (err) {
      this.deps.clients.afterError(key, err);
      const info = errorInfo(err, Reasons.StoreNotReady);
      // A backend that fails for now makes the store not ready; a configuration or policy problem says which.
      const reason = info.retry === 'terminal' || info.clientUnusable ? info.reason : Reasons.StoreNotReady;
      ready = { type: 'Ready', status: 'False', reason, message: info.message };
    }
    ready.observedGeneration = store.metadata.generation;

    // Record.
    const { patch, move } = planStoreStatus(store, ready, served, this.deps.eventsCondition?.(key, store));
    if (patch)
      await this.deps.status.patch(store, patch, signal).catch((err: unknown) => {
        if (!isNotFound(err)) this.deps.log.warn('could not write store status', { store: name, error: errorMessage(err) });
      });

    // Follow.
    const target = this.deps.eventTarget(store);
    if (ready.status === 'False') {
      this.deps.events.emit(target, 'Warning', ready.reason, ready.message);
      this.deps.log.warn('store not ready', { store: name, reason: ready.reason, message: ready.message });
    }
    if (move) {
      this.deps.events.emit(target, move.type, move.reason, move.message);
      this.deps.log.info('store region changed', { store: name, from: move.from, to: move.to });
    }
  }
}
