import { TokenBucket, type KubeClient } from '../kube/client.js';
import type { Logger } from '../observability/logger.js';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

/** Events per second across all objects, by type; beyond the budget an Event is dropped and counted. */
export interface EventBudget {
  normalPerSecond: number;
  normalBurst: number;
  warningPerSecond: number;
  warningBurst: number;
}

/**
 * Defaults: a ManagedSecret or two changing gets every Event, a cold start of
 * thousands does not spend half its API writes on "created" Events (each one
 * costs the API server as much as the Secret write). Warnings get more room.
 */
export const DEFAULT_EVENT_BUDGET: EventBudget = {
  normalPerSecond: 5,
  normalBurst: 100,
  warningPerSecond: 20,
  warningBurst: 200,
};

/**
 * Where Events about cluster-scoped objects (ClusterSecretStores,
 * ReplicationTargets) go: the API server refuses them in any other namespace.
 */
export const CLUSTER_SCOPED_EVENT_NAMESPACE = 'default';

export interface EventRecorderOptions {
  /** The same reason and message for one object at most once in this long (default 5 minutes). */
  repeatAfterMs?: number;
  /** Events per second across all objects, by type (default DEFAULT_EVENT_BUDGET). */
  budget?: EventBudget;
  /** Told of each Event dropped for want of budget (for a metric). */
  onDropped?: (type: 'Normal' | 'Warning') => void;
}

/**
 * Kubernetes Events for what a person should see in `kubectl describe`.
 * The same reason and message for the same object is emitted at most once per
 * `repeatAfterMs`, so a failing store retried with back-off cannot flood etcd;
 * a budget per type bounds the rate across objects (status conditions always
 * carry the same facts, so a dropped Event loses no information).
 */
export class EventRecorder {
  private readonly last = new Map<string, number>();
  private readonly buckets: Record<'Normal' | 'Warning', TokenBucket>;

  private readonly repeatAfterMs: number;
  private readonly onDropped: (type: 'Normal' | 'Warning') => void;

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
    options: EventRecorderOptions = {},
  ) {
    this.repeatAfterMs = options.repeatAfterMs ?? 5 * 60_000;
    this.onDropped = options.onDropped ?? (() => {});
    const budget = options.budget ?? DEFAULT_EVENT_BUDGET;
    this.buckets = {
      Normal: new TokenBucket(budget.normalPerSecond, budget.normalBurst),
      Warning: new TokenBucket(budget.warningPerSecond, budget.warningBurst),
    };
  }

  emit(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const dedupeKey = `${target.uid ?? `${target.namespace}/${target.name}`}|${reason}|${message}`;
    const now = Date.now();
    const previous = this.last.get(dedupeKey);
    if (previous !== undefined && now - previous < this.repeatAfterMs) return;
    if (!this.buckets[type].tryTake()) {
      this.onDropped(type);
      return;
    }
    this.last.set(dedupeKey, now);
    if (this.last.size > 10_000) this.prune(now);
    const namespace = target.namespace ?? CLUSTER_SCOPED_EVENT_NAMESPACE;
    const time = new Date(now).toISOString();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${target.name}.`, namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name: target.name,
        namespace: target.namespace,
        uid: target.uid,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: 'secretsync' },
      reportingComponent: 'secretsync',
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    this.client.request('POST', `/api/v1/namespaces/${namespace}/events`, { body }).catch((err: unknown) => {
      this.logger.warn('could not record an Event', {
        reason,
        error: err instanceof Error ? err.message : String(err),
      });
    });
  }

  private prune(now: number): void {
    for (const [k, t] of this.last) if (now - t >= this.repeatAfterMs) this.last.delete(k);
  }
}
