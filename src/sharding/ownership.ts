// The contract between the two halves of active-active sharding (issue 18):
// the shard coordinator (which shards this replica holds, through Leases, and a
// fence per shard) and the data plane (which ManagedSecrets and Secrets this
// replica watches, caches and writes). Work is split into a fixed number of
// virtual shards; a ManagedSecret's shard is a stable hash of its namespace and
// name, carried as a label so that the API server selects a replica's objects
// (memory per replica falls as replicas are added). Kubernetes is the
// distributed engine: Leases and label selectors, no protocol of our own.
import type { WriteFence } from '../kube/client.js';

/** The label on a ManagedSecret, and on the Secret written for it, naming its shard. */
export const LABEL_SHARD = 'secretsync.io/shard';

/** Virtual shards when sharding is on and no count is given: more than the replicas anyone runs, few Leases to renew. */
export const DEFAULT_SHARD_COUNT = 16;
/** The most virtual shards a deployment may ask for (each held shard is one Lease renewed every retry period). */
export const MAX_SHARD_COUNT = 256;

/**
 * The shard of a ManagedSecret: FNV-1a (32-bit) of "<namespace>/<name>" in
 * UTF-8, modulo the shard count. Stable across processes, Node versions and
 * restarts (no seed), cheap, and spread evenly enough over names such as
 * app-0001…app-9999. The Secret written for a ManagedSecret has the same
 * namespace and, by default, the same name, but always takes the shard of its
 * ManagedSecret (the label is copied, never computed from the Secret's name).
 */
export function shardOf(namespace: string, name: string, shardCount: number): number {
  if (!Number.isInteger(shardCount) || shardCount < 1)
    throw new RangeError(`shard count must be a positive integer, got ${shardCount}`);
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(`${namespace}/${name}`, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shardCount;
}

/** The label value of a shard (decimal, no padding). */
export const shardLabelValue = (shard: number): string => String(shard);

/**
 * The shard a label value names, or undefined for a value that is not a
 * decimal shard number below the count (a hand-edited or foreign label: the
 * owner of the computed shard relabels it).
 */
export function parseShardLabel(value: string | undefined, shardCount: number): number | undefined {
  if (value === undefined || !/^(0|[1-9][0-9]{0,4})$/.test(value)) return undefined;
  const shard = Number(value);
  return shard < shardCount ? shard : undefined;
}

/**
 * Which shards this replica holds, now. Implemented by the shard coordinator
 * (Leases); the data plane reads it and never assumes a shard stays held.
 */
export interface ShardOwnership {
  readonly shardCount: number;
  /** The shards held now (a snapshot; a shard in it may be lost a moment later: writes check `fenceFor`). */
  owned(): ReadonlySet<number>;
  /**
   * Called with the new set after every change, gains and losses together.
   * A loss is reported after the shard's fence has already stopped passing,
   * so that no write of the old owner can follow the new owner's first write.
   * Returns a function that removes the listener.
   */
  onChange(listener: (owned: ReadonlySet<number>) => void): () => void;
  /**
   * The fence of one shard: `assertHeld()` throws NotShardOwnerError (a
   * transient error) unless this replica holds the shard and renewed its Lease
   * within the renew deadline; `signal` aborts when the shard is lost. Every
   * write for a ManagedSecret of the shard goes through it.
   */
  fenceFor(shard: number): WriteFence;
}
