// The SQS part of the events benchmark at N = 50 against the suite's control
// plane and moto (a real EventBridge rule and queue): it must keep working, and
// what must be exact is: every change reaches every reader, one backend read
// per change, and no reads at rest (only queue polls).
import { expect } from 'chai';
import { adminKube, defaultOptions, type BenchContext } from '../../../bench/lib/context.js';
import { eventsSqsScenario } from '../../../bench/scenarios/events-sqs.js';
import { sharedCluster, sharedMoto } from '../env.js';

describe('bench: events-sqs (N = 50)', function () {
  this.timeout(6 * 60_000);

  it('measures change latency, reads per change and requests at rest, next to polling', async () => {
    const ctx: BenchContext = {
      cluster: sharedCluster(),
      kube: adminKube(sharedCluster()),
      moto: () => Promise.resolve(sharedMoto()),
      options: { ...defaultOptions(), compiled: false, refreshSeconds: 2, changes: 20 },
      log: (m) => console.log(`      ${new Date().toISOString()} ${m}`),
      results: new Map(),
    };
    const f = await eventsSqsScenario(ctx, 50, 25_000);
    console.log(`      ${JSON.stringify(f)}`);
    expect(f.missed).to.equal(0);
    expect(f.p99Ms).to.be.a('number').and.below(2_000);
    // Only the changed key is read (a batch read of one key, or a single read).
    expect(f.backendReadsPerChange).to.be.at.most(1.1);
    expect(f.readsPerHourAtRest).to.equal(0);
    // At rest only long polls: one per 20 s at most (plus a delete, none here).
    expect(f.requestsPerHourAtRest).to.be.at.most(400);
    expect(f.pollingRequestsPerHourAtRest).to.be.above(f.requestsPerHourAtRest as number);
  });
});
