// A ShardOwnership without Leases: a fixed (or, in tests, settable) set of
// shards whose fences pass. For `secretsync run --sharding --shards-owned 0,1`
// manual runs, where the operator of the cluster assigns shards to replicas by
// hand, and for tests of the data plane that must not depend on the shard
// coordinator. Losing a shard follows the contract: its fence stops passing
// and its signal aborts before listeners hear of the new set.
import { NotShardOwnerError } from '../api/errors.js';
import type { WriteFence } from '../kube/client.js';
import type { ShardOwnership } from './ownership.js';

class StaticFence implements WriteFence {
  private controller = new AbortController();
  held = false;

  constructor(private readonly shard: number) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  assertHeld(): void {
    if (!this.held) throw new NotShardOwnerError(this.shard);
  }

  gain(): void {
    if (this.held) return;
    // A fresh signal per tenure: the previous one stays aborted for the work it stopped.
    if (this.controller.signal.aborted) this.controller = new AbortController();
    this.held = true;
  }

  lose(): void {
    if (!this.held) return;
    this.held = false;
    this.controller.abort(new NotShardOwnerError(this.shard));
  }
}

export class StaticShardOwnership implements ShardOwnership {
  private current = new Set<number>();
  private readonly fences: StaticFence[];
  private readonly listeners = new Set<(owned: ReadonlySet<number>) => void>();

  constructor(
    readonly shardCount: number,
    owned: Iterable<number>,
  ) {
    this.fences = Array.from({ length: shardCount }, (_, shard) => new StaticFence(shard));
    this.apply(owned, false);
  }

  owned(): ReadonlySet<number> {
    return this.current;
  }

  onChange(listener: (owned: ReadonlySet<number>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  fenceFor(shard: number): WriteFence {
    const fence = this.fences[shard];
    if (!fence) throw new RangeError(`shard ${shard} is not below the shard count ${this.shardCount}`);
    return fence;
  }

  /** Holds exactly `owned` from now on: losses fence first, then listeners hear the new set. */
  set(owned: Iterable<number>): void {
    this.apply(owned, true);
  }

  private apply(owned: Iterable<number>, notify: boolean): void {
    const next = new Set<number>();
    for (const shard of owned) {
      if (!Number.isInteger(shard) || shard < 0 || shard >= this.shardCount)
        throw new RangeError(`shard ${shard} is not in 0..${this.shardCount - 1}`);
      next.add(shard);
    }
    for (const shard of this.current) if (!next.has(shard)) this.fences[shard]?.lose();
    for (const shard of next) this.fences[shard]?.gain();
    const changed = next.size !== this.current.size || [...next].some((s) => !this.current.has(s));
    this.current = next;
    if (notify && changed) for (const listener of [...this.listeners]) listener(next);
  }
}

/** Parses `--shards-owned 0,1,5-7` into shard numbers below `shardCount`. */
export function parseShardList(text: string, shardCount: number): number[] {
  const shards = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!range) throw new Error(`'${part}' is not a shard number or range (like 3 or 0-7)`);
    const from = Number(range[1]);
    const to = range[2] === undefined ? from : Number(range[2]);
    if (to < from) throw new Error(`'${part}': the range ends before it begins`);
    if (to >= shardCount) throw new Error(`shard ${to} is not below the shard count ${shardCount}`);
    for (let s = from; s <= to; s++) shards.add(s);
  }
  return [...shards].sort((a, b) => a - b);
}
