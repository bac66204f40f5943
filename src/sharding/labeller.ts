// The shard labeller: in sharded mode every replica watches the ManagedSecrets
// that carry no valid shard label (server-side selection, so a replica sees
// only those) and patches in the computed one. Until it is there, no replica's
// per-shard cache selects the object, so without this a ManagedSecret created
// by kubectl would never sync. Each replica labels the unlabelled ManagedSecrets
// of the shards it holds (`owns`), and those of a shard it gains: one patch per
// object in all, not one per replica (measured: 4 replicas over 10,000 new
// ManagedSecrets sent 4 patches each). The patch is idempotent (the same
// computed value, a merge patch of one label), so a race during a hand-over is
// harmless, and no replica has to lead for it.
import type { KubeClient, KubeObject } from '../kube/client.js';
import { isNotFound } from '../kube/client.js';
import { InformerGroup } from '../kube/informer-group.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { LABEL_SHARD, parseShardLabel, shardLabelValue, shardOf } from './ownership.js';

interface NamedObject {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

/**
 * The shard label a ManagedSecret should be patched to, or undefined when it
 * already carries its computed shard. A missing, malformed or out-of-range
 * label, and a valid shard number that is not the computed one (hand-edited),
 * all get the computed value.
 */
export function shardLabelFix(ms: NamedObject, shardCount: number): string | undefined {
  const computed = shardOf(ms.metadata.namespace ?? '', ms.metadata.name, shardCount);
  const current = parseShardLabel(ms.metadata.labels?.[LABEL_SHARD], shardCount);
  return current === computed ? undefined : shardLabelValue(computed);
}

/** Selects the ManagedSecrets without a valid shard label (`notin` also selects those without the key). */
export function unlabelledSelector(shardCount: number): string {
  return `${LABEL_SHARD} notin (${Array.from({ length: shardCount }, (_, s) => shardLabelValue(s)).join(',')})`;
}

export interface ShardLabellerOptions {
  /** ManagedSecret collection paths (one cluster-wide, or one per watched namespace). */
  paths: string[];
  shardCount: number;
  log: Logger;
  metrics?: Metrics;
  /** First wait before patching again after a failure (default 1 s; doubled up to 30 s). */
  retryBaseDelayMs?: number;
  /** Whether this replica holds a shard (default: every shard). Unlabelled objects of other shards are their holders' to label. */
  owns?: (shard: number) => boolean;
  /** Patches in flight at most (default 8); the rest wait their turn in arrival order. */
  maxInFlight?: number;
}

/**
 * Why a bound: 50,000 new ManagedSecrets meant 12,500 patches sent at once
 * per replica. They queued behind each other in the client's rate limiter and
 * at the API server until they passed their 30 s deadline, were sent again,
 * and starved the Lease renewals that keep the replicas alive (measured: all
 * four replicas lost their Leases within two minutes on the 2-core machine).
 */
const DEFAULT_MAX_IN_FLIGHT = 8;

const RETRY_MAX_DELAY_MS = 30_000;

export class ShardLabeller {
  private readonly unlabelled: InformerGroup<KubeObject>;
  /** Keys being patched, and those waiting to try again after a failure. */
  private readonly pending = new Map<string, { attempts: number; timer?: NodeJS.Timeout }>();
  /** Patches waiting for a slot, in arrival order (the latest view of each object). */
  private readonly waiting = new Map<string, { ms: NamedObject; value: string }>();
  private inFlight = 0;
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    private readonly options: ShardLabellerOptions,
  ) {
    this.unlabelled = new InformerGroup<KubeObject>(client, options.paths, {
      labelSelector: unlabelledSelector(options.shardCount),
      // Only the name and labels are read: a few bytes per object, however large its spec.
      transform: (o) => ({
        metadata: {
          name: o.metadata.name,
          namespace: o.metadata.namespace,
          labels: o.metadata.labels,
          resourceVersion: o.metadata.resourceVersion,
        },
      }),
      onError: (err) =>
        options.log.warn('watch failed; retrying', {
          resource: 'managedsecrets (unlabelled)',
          error: errorMessage(err),
        }),
    });
    this.unlabelled.on({ add: (ms) => this.labelIfOwned(ms), update: (_old, ms) => this.labelIfOwned(ms) });
  }

  /** Labels the unlabelled ManagedSecrets of shards just gained (their former holder may not have got to them). */
  shardsGained(shards: ReadonlySet<number>): void {
    if (shards.size === 0) return;
    for (const ms of this.unlabelled.list())
      if (shards.has(shardOf(ms.metadata.namespace ?? '', ms.metadata.name, this.options.shardCount))) this.label(ms);
  }

  private labelIfOwned(ms: NamedObject): void {
    const shard = shardOf(ms.metadata.namespace ?? '', ms.metadata.name, this.options.shardCount);
    if (this.options.owns?.(shard) ?? true) this.label(ms);
  }

  /** Unlabelled ManagedSecrets seen now (for tests and the gauges). */
  get size(): number {
    return this.unlabelled.size;
  }

  async start(): Promise<void> {
    await this.unlabelled.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const entry of this.pending.values()) clearTimeout(entry.timer);
    this.pending.clear();
    this.waiting.clear();
    await this.unlabelled.stop();
  }

  /** Patches the computed shard label onto a ManagedSecret whose label is missing or wrong; else nothing. */
  label(ms: NamedObject): void {
    const value = shardLabelFix(ms, this.options.shardCount);
    if (value === undefined || this.stopped) return;
    const key = `${ms.metadata.namespace ?? ''}/${ms.metadata.name}`;
    const entry = this.pending.get(key);
    if (entry && entry.timer === undefined) return; // a patch is waiting or in flight
    if (entry?.timer) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    this.pending.set(key, entry ?? { attempts: 0 });
    this.waiting.set(key, { ms, value });
    this.pump();
  }

  /** Patches waiting in the queue still (for tests). */
  get queued(): number {
    return this.waiting.size;
  }

  /** Starts waiting patches while slots are free. */
  private pump(): void {
    const max = this.options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    for (const [key, { ms, value }] of this.waiting) {
      if (this.inFlight >= max || this.stopped) return;
      this.waiting.delete(key);
      this.inFlight += 1;
      void this.send(key, ms, value).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async send(key: string, ms: NamedObject, value: string): Promise<void> {
    const current = this.pending.get(key) ?? { attempts: 0 };
    await this.patch(ms, value).then(
      () => {
        this.pending.delete(key);
      },
      (err: unknown) => {
        if (this.stopped) return;
        current.attempts += 1;
        const base = this.options.retryBaseDelayMs ?? 1_000;
        const delay = Math.min(RETRY_MAX_DELAY_MS, base * 2 ** Math.min(current.attempts - 1, 6));
        this.options.log.warn('could not label a ManagedSecret with its shard; trying again', {
          managedSecret: key,
          error: errorMessage(err),
          retryInMs: delay,
        });
        // Back in the queue with its attempts kept, so the next failure waits longer.
        current.timer = setTimeout(() => {
          current.timer = undefined;
          if (this.stopped) return;
          this.waiting.set(key, { ms, value });
          this.pump();
        }, delay);
        current.timer.unref();
      },
    );
  }

  private async patch(ms: NamedObject, value: string): Promise<void> {
    const ns = ms.metadata.namespace ?? '';
    try {
      await this.client.request(
        'PATCH',
        `/apis/secretsync.io/v1alpha1/namespaces/${ns}/managedsecrets/${ms.metadata.name}`,
        {
          body: { metadata: { labels: { [LABEL_SHARD]: value } } },
          contentType: 'application/merge-patch+json',
          // The same label, whoever sends it: safe to repeat after a lost answer.
          idempotent: true,
          discardBody: true,
        },
      );
      this.options.metrics?.kubeWrites.inc({ resource: 'managedsecrets', verb: 'patch' });
    } catch (err) {
      // Deleted meanwhile: nothing to label.
      if (!isNotFound(err)) throw err;
    }
  }
}
