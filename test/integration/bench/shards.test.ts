// The shards benchmark at N = 60 against the suite's control plane: four
// sharded operator processes split 16 shards evenly, one is killed half-way
// through the cold sync and one paused past its Lease; what must be exact at
// any N: every ManagedSecret labelled, no accepted duplicate write, the
// shards served again within the Lease duration plus a few seconds, and
// nothing written by the paused replica after it resumed.
import { expect } from 'chai';
import { adminKube, defaultOptions, type BenchContext } from '../../../bench/lib/context.js';
import { shardsScenario } from '../../../bench/scenarios/shards.js';
import { sharedCluster, sharedMoto } from '../env.js';

describe('bench: shards (N = 60)', function () {
  this.timeout(6 * 60_000);

  it('splits 16 shards 4/4/4/4, survives a kill and a pause with no duplicate write', async () => {
    const ctx: BenchContext = {
      cluster: sharedCluster(),
      kube: adminKube(sharedCluster()),
      moto: () => Promise.resolve(sharedMoto()),
      options: { ...defaultOptions(), compiled: false },
      log: (m) => console.log(`      ${new Date().toISOString()} ${m}`),
      results: new Map(),
    };
    const f = await shardsScenario(ctx, 60);
    console.log(`      ${JSON.stringify(f)}`);
    expect(f.shardSplit).to.equal('4/4/4/4');
    expect(f.labelledManagedSecrets).to.equal(60);
    expect(f.coldDuplicateSecretWrites).to.equal(0);
    expect(f.pauseDuplicateSecretWrites).to.equal(0);
    expect(f.pausedReplicaWritesAfterResume).to.equal(0);
    expect(f.changesInPausedShards).to.be.above(0);
    // Lease duration 15 s, plus renewal passes and the poll.
    expect(f.shardsServedAgainAfterKillSeconds).to.be.below(25);
    expect(f.shardsServedAgainAfterPauseSeconds).to.be.below(25);
  });
});
