// The shard coordinator's decisions without any API server: the fair share
// every replica computes alike, and how many shards move when replicas come
// and go, by running the real planner for each replica in turn until nothing
// changes (as the replicas' passes would, one Lease write at a time).
import { expect } from 'chai';
import { fairShare, planShards, shardWeight } from '../../../src/sharding/coordinator.js';

const S = 16;

/** Holders of the shards (undefined: free), and how many times a shard changed hands. */
class Cluster {
  readonly holders: (string | undefined)[] = new Array<string | undefined>(S).fill(undefined);
  moves = 0;

  /**
   * Runs every member's plan in turn until a whole round changes nothing;
   * returns the shards that changed hands (a first claim of a free shard is no move).
   */
  settle(members: readonly string[]): number {
    const before = this.moves;
    const lastHolder = [...this.holders];
    // A member that left holds nothing any more: its Leases expired or were released.
    for (let shard = 0; shard < S; shard++) {
      const holder = this.holders[shard];
      if (holder !== undefined && !members.includes(holder)) this.holders[shard] = undefined;
    }
    for (let round = 0; round < 20; round++) {
      let changed = false;
      for (const identity of members) {
        const held = new Set(this.holders.flatMap((h, shard) => (h === identity ? [shard] : [])));
        const free = new Set(this.holders.flatMap((h, shard) => (h === undefined ? [shard] : [])));
        const plan = planShards({ shardCount: S, identity, members, held, free });
        for (const shard of plan.release) {
          this.holders[shard] = undefined;
          changed = true;
        }
        for (const shard of plan.acquire) {
          this.holders[shard] = identity;
          if (lastHolder[shard] !== undefined && lastHolder[shard] !== identity) this.moves++;
          lastHolder[shard] = identity;
          changed = true;
        }
      }
      if (!changed) return this.moves - before;
    }
    throw new Error('the plans did not settle within 20 rounds');
  }

  count(identity: string): number {
    return this.holders.filter((h) => h === identity).length;
  }
}

describe('sharding: fair share and rebalancing', () => {
  it('gives the first (S mod R) members by identity ceil(S/R), the others floor(S/R)', () => {
    const members = ['c', 'a', 'b'];
    expect(members.map((m) => fairShare(16, members, m))).to.deep.equal([5, 6, 5]);
    expect(['a', 'b', 'c', 'd'].map((m) => fairShare(5, ['d', 'c', 'b', 'a'], m))).to.deep.equal([2, 1, 1, 1]);
    expect(fairShare(16, ['a'], 'a')).to.equal(16);
    expect(fairShare(16, ['a', 'b'], 'x')).to.equal(0);
    // More replicas than shards: the last ones idle.
    const many = Array.from({ length: 20 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    expect(many.map((m) => fairShare(16, many, m)).reduce((a, b) => a + b)).to.equal(16);
    expect(fairShare(16, many, 'r19')).to.equal(0);
  });

  it('releases the extras it weighs lowest and reaches for the free shards it weighs highest', () => {
    const held = new Set(Array.from({ length: S }, (_, i) => i));
    const plan = planShards({ shardCount: S, identity: 'a', members: ['a', 'b'], held, free: new Set() });
    expect(plan.share).to.equal(8);
    expect(plan.release).to.have.length(8);
    const kept = [...held].filter((s) => !plan.release.includes(s));
    expect(Math.min(...kept.map((s) => shardWeight(s, 'a')))).to.be.greaterThan(
      Math.max(...plan.release.map((s) => shardWeight(s, 'a'))),
    );
    const wanting = planShards({ shardCount: S, identity: 'b', members: ['a', 'b'], held: new Set(), free: held });
    expect(wanting.release).to.deep.equal([]);
    expect(wanting.acquire).to.have.length(8);
    // Deterministic: the same view gives the same plan.
    expect(planShards({ shardCount: S, identity: 'a', members: ['b', 'a'], held, free: new Set() })).to.deep.equal(
      plan,
    );
  });

  it('moves only the shards that must move: 1 → 2 → 3 → 4 → 3 replicas (S = 16)', () => {
    const cluster = new Cluster();
    cluster.settle(['replica-a']);
    expect(cluster.count('replica-a')).to.equal(16);

    expect(cluster.settle(['replica-a', 'replica-b'])).to.equal(8);
    expect([cluster.count('replica-a'), cluster.count('replica-b')]).to.deep.equal([8, 8]);

    // Shares 6/5/5: a gives 2, b gives 3; nothing moves between a and b.
    const before3 = [...cluster.holders];
    expect(cluster.settle(['replica-a', 'replica-b', 'replica-c'])).to.equal(5);
    for (let shard = 0; shard < S; shard++)
      if (cluster.holders[shard] !== 'replica-c') expect(cluster.holders[shard]).to.equal(before3[shard]);

    // Shares 4 each: c's 5 gives 1, so the 4 for d come 2 from a, 1 from b, 1 from c.
    expect(cluster.settle(['replica-a', 'replica-b', 'replica-c', 'replica-d'])).to.equal(4);
    expect(['a', 'b', 'c', 'd'].map((m) => cluster.count(`replica-${m}`))).to.deep.equal([4, 4, 4, 4]);

    // b leaves: only its 4 shards move; every other shard stays where it was.
    const before = [...cluster.holders];
    expect(cluster.settle(['replica-a', 'replica-c', 'replica-d'])).to.equal(4);
    for (let shard = 0; shard < S; shard++)
      if (before[shard] !== 'replica-b') expect(cluster.holders[shard]).to.equal(before[shard]);
    expect(['a', 'c', 'd'].map((m) => cluster.count(`replica-${m}`))).to.deep.equal([6, 5, 5]);
  });

  it('gives the same assignment for the same history (no randomness)', () => {
    const run = () => {
      const cluster = new Cluster();
      for (const members of [['a'], ['a', 'b'], ['a', 'b', 'c'], ['a', 'c']]) cluster.settle(members);
      return cluster.holders;
    };
    expect(run()).to.deep.equal(run());
  });
});
