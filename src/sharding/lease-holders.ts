// The shard Leases as anyone can read them: their names and labels, and who
// holds each shard now. The coordinator names and labels its Leases with these;
// the benchmark, the tests and, later, a status command read the holders with
// `readShardLeases` instead of each parsing Lease names its own way.
import type { KubeClient, KubeList } from '../kube/client.js';
import { leasesPath, type Lease } from '../kube/lease.js';

export const DEFAULT_SHARD_LEASE_PREFIX = 'secretsync-shard';
/** On every Lease of a coordinator group (value: the prefix): one LIST by label reads members and shards. */
export const LABEL_SHARD_LEASE_GROUP = 'secretsync.io/shard-lease-group';
/** `member` (a replica's liveness) or `shard` (a shard's ownership). */
export const LABEL_SHARD_LEASE_ROLE = 'secretsync.io/shard-lease-role';

/** The name of a shard's Lease. */
export const shardLeaseName = (prefix: string, shard: number): string => `${prefix}-${shard}`;

/** The shard a Lease of the group is for, from its name `<prefix>-<n>`; undefined for any other name. */
export function shardOfLeaseName(prefix: string, name: string, shardCount: number): number | undefined {
  if (!name.startsWith(`${prefix}-`)) return undefined;
  const match = /^(0|[1-9][0-9]*)$/.exec(name.slice(prefix.length + 1));
  if (!match) return undefined;
  const shard = Number(match[1]);
  return shard < shardCount ? shard : undefined;
}

/** One shard Lease as the API server has it now. */
export interface ShardLeaseRecord {
  shard: number;
  /** holderIdentity: '' when released (or never held). Not checked for expiry: a dead holder stays until taken over. */
  holder: string;
  /** Changes of holder since the Lease was created (hand-overs through a cleared Lease count too). */
  transitions: number;
}

/**
 * The shard Leases of a coordinator group in `namespace`, by shard (one LIST
 * by label). Shards without a Lease yet are absent.
 */
export async function readShardLeases(
  client: KubeClient,
  namespace: string,
  options: { prefix?: string; shardCount: number },
): Promise<Map<number, ShardLeaseRecord>> {
  const prefix = options.prefix ?? DEFAULT_SHARD_LEASE_PREFIX;
  const list = await client.get<KubeList<Lease>>(leasesPath(namespace), {
    labelSelector: `${LABEL_SHARD_LEASE_GROUP}=${prefix},${LABEL_SHARD_LEASE_ROLE}=shard`,
  });
  const byShard = new Map<number, ShardLeaseRecord>();
  for (const lease of list.items) {
    const shard = shardOfLeaseName(prefix, lease.metadata.name, options.shardCount);
    if (shard === undefined) continue;
    byShard.set(shard, {
      shard,
      holder: lease.spec.holderIdentity ?? '',
      transitions: lease.spec.leaseTransitions ?? 0,
    });
  }
  return byShard;
}

/** The holder of every shard Lease that names one (released shards and shards without a Lease are absent). */
export async function readShardHolders(
  client: KubeClient,
  namespace: string,
  options: { prefix?: string; shardCount: number },
): Promise<Map<number, string>> {
  const holders = new Map<number, string>();
  for (const [shard, lease] of await readShardLeases(client, namespace, options))
    if (lease.holder !== '') holders.set(shard, lease.holder);
  return holders;
}
