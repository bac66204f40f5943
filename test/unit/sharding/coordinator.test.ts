// The shard coordinator against the in-process fake API server (our own
// stand-in, with Lease compare-and-swap), with a monotonic clock the test can
// move forward: claiming, the order of fence and notification, the renew
// deadline by timer and by clock, graceful handover, and option checks.
import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { NotShardOwnerError } from '../../../src/api/errors.js';
import { LeaderElectionTimingError } from '../../../src/controller/leader.js';
import {
  ShardCoordinator,
  ShardCoordinatorOptionsError,
  type ShardCoordinatorOptions,
} from '../../../src/sharding/coordinator.js';
import { createLogger } from '../../../src/observability/logger.js';
import type { WriteFence } from '../../../src/kube/client.js';
import { FakeApiServer } from '../kube/fake-apiserver.js';

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/secretsync/leases';
const S = 16;
const TIMING = { leaseDurationMs: 1_000, renewDeadlineMs: 800, retryPeriodMs: 100 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const fails = (fence: WriteFence) => {
  try {
    fence.assertHeld();
    return false;
  } catch (err) {
    if (!(err instanceof NotShardOwnerError)) throw err;
    return true;
  }
};

describe('ShardCoordinator', function () {
  this.timeout(15_000);
  let server: FakeApiServer;
  let coordinators: ShardCoordinator[];
  /** A test's poll loop runs while this is set; afterEach clears it, so a failed test leaves no loop running. */
  let polling = false;
  const logger = createLogger('error');

  const holderOf = (shard: number) =>
    (server.get(LEASES, `secretsync-shard-${shard}`)?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;

  function coordinator(identity: string, options: Partial<ShardCoordinatorOptions> = {}): ShardCoordinator {
    const c = new ShardCoordinator(
      server.auth(),
      { namespace: 'secretsync', identity, shardCount: S, ...TIMING, ...options },
      logger,
    );
    coordinators.push(c);
    return c;
  }

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    server.declare(LEASES);
    coordinators = [];
  });

  afterEach(async () => {
    polling = false;
    server.hangWhen = undefined;
    await Promise.all(coordinators.map((c) => c.stop()));
    await server.stop();
  });

  it('claims every shard alone, and reports a gain only once the Lease names it', async () => {
    const a = coordinator('a');
    const reported: number[][] = [];
    const unheldAtReport: number[] = [];
    a.onChange((owned) => {
      reported.push([...owned]);
      for (const shard of owned) if (holderOf(shard) !== 'a') unheldAtReport.push(shard);
    });
    await a.start();
    await waitFor('a to hold all shards', () => a.owned().size === S);
    expect(unheldAtReport).to.deep.equal([]);
    expect(reported.at(-1)).to.have.length(S);
    for (let shard = 0; shard < S; shard++) {
      expect(holderOf(shard)).to.equal('a');
      expect(fails(a.fenceFor(shard))).to.equal(false);
    }
    const memberHolder = () =>
      (server.get(LEASES, a['memberName'] as string)?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
    await waitFor('its member Lease', () => memberHolder() === 'a');
  });

  it('fails every fence at once when the clock passes the renew deadline (a resumed process), before telling listeners', async () => {
    let offset = 0;
    const a = coordinator('a', { monotonicNow: () => performance.now() + offset });
    await a.start();
    await waitFor('a to hold all shards', () => a.owned().size === S);
    const fences = Array.from({ length: S }, (_, shard) => a.fenceFor(shard));
    const passingWhenTold: number[] = [];
    let told = false;
    a.onChange((owned) => {
      if (owned.size > 0) return;
      told = true;
      fences.forEach((f, shard) => !fails(f) && passingWhenTold.push(shard));
    });

    // As if the process had been stopped for longer than the renew deadline and no timer had run.
    offset += TIMING.renewDeadlineMs + 10;
    expect(fences.every(fails)).to.equal(true);
    expect(fences.every((f) => f.signal.aborted)).to.equal(true);
    expect(a.owned().size).to.equal(0);
    await waitFor('the listeners to hear of the loss', () => told);
    expect(passingWhenTold).to.deep.equal([]);

    // The Leases still name a and nobody took them: it wins them back, as new tenures with new fences.
    await waitFor('a to hold all shards again', () => a.owned().size === S);
    expect(fences.every(fails)).to.equal(true);
    expect(fails(a.fenceFor(0))).to.equal(false);
  });

  it('ends a shard by the timer when its renewals hang, within the renew deadline', async () => {
    const a = coordinator('a');
    await a.start();
    await waitFor('a to hold all shards', () => a.owned().size === S);
    const fences = Array.from({ length: S }, (_, shard) => a.fenceFor(shard));
    const lostAt: number[] = [];
    for (const fence of fences) fence.signal.addEventListener('abort', () => lostAt.push(performance.now()));
    const hungAt = performance.now();
    server.hangWhen = (method) => method !== 'GET';
    await waitFor('every signal to abort', () => lostAt.length === S, 3_000);
    // Each shard's last renewal was sent at most one retry period (and a request's time) before the hang.
    for (const at of lostAt)
      expect(at - hungAt).to.be.within(
        TIMING.renewDeadlineMs - TIMING.retryPeriodMs - 50,
        TIMING.renewDeadlineMs + 100,
      );
    expect(fences.every(fails)).to.equal(true);
    expect(a.owned().size).to.equal(0);
  });

  it('splits the shards 8/8 with a second replica, never holding one twice, and hands over on a graceful stop', async () => {
    // A long lease duration: only a real handover (not an expiry) can move the shards within the test's bounds.
    const slow = { leaseDurationMs: 10_000, renewDeadlineMs: 8_000 };
    const a = coordinator('a', slow);
    await a.start();
    await waitFor('a to hold all shards', () => a.owned().size === S);
    const b = coordinator('b', slow);
    const overlaps: number[] = [];
    polling = true;
    const poll = (async () => {
      while (polling) {
        const ofA = a.owned();
        for (const shard of b.owned()) if (ofA.has(shard)) overlaps.push(shard);
        await sleep(5);
      }
    })();
    await b.start();
    await waitFor('8/8', () => a.owned().size === 8 && b.owned().size === 8, 3_000);
    for (let shard = 0; shard < S; shard++) expect(holderOf(shard)).to.equal(a.owned().has(shard) ? 'a' : 'b');
    expect(a.members()).to.deep.equal(['a', 'b']);

    const stoppedAt = performance.now();
    await a.stop();
    // Member Lease deleted, shard Leases cleared: b takes them at its next pass (100 ms), not after 10 s.
    await waitFor('b to hold all shards', () => b.owned().size === S, 3_000);
    polling = false;
    expect(performance.now() - stoppedAt).to.be.below(3_000);
    await poll;
    expect(overlaps).to.deep.equal([]);
    expect(server.get(LEASES, a['memberName'] as string)).to.equal(undefined);
  });

  it('at rest, makes one renewal per held shard, one member renewal and one LIST per replica and retry period', async () => {
    // Four replicas, S = 16: (16 + 4 + 4) requests per retry period for the whole cluster, 12/s at the 2 s default.
    const slow = { leaseDurationMs: 10_000, renewDeadlineMs: 8_000, retryPeriodMs: 200 };
    const replicas = ['a', 'b', 'c', 'd'].map((id) => coordinator(id, slow));
    await Promise.all(replicas.map((c) => c.start()));
    await waitFor('4/4/4/4', () => replicas.every((c) => c.owned().size === 4), 5_000);
    await sleep(2 * slow.retryPeriodMs);
    const from = server.requests.length;
    const started = Date.now();
    await sleep(2_000);
    const window = server.requests.slice(from);
    const periods = (Date.now() - started) / slow.retryPeriodMs;
    const count = (method: string, member: boolean | undefined) =>
      window.filter(
        (r) =>
          r.method === method &&
          (member === undefined || r.path.includes('-member-') === member) &&
          (method !== 'GET' || r.path === LEASES),
      ).length / periods;
    expect(window.filter((r) => r.method !== 'PUT' && r.method !== 'GET')).to.deep.equal([]);
    expect(window.filter((r) => r.method === 'GET' && r.path !== LEASES)).to.deep.equal([]);
    // Passes come no faster than one per retry period (slower under load): upper bounds, with a little slack.
    expect(count('PUT', false)).to.be.within(8, 16 * 1.1);
    expect(count('PUT', true)).to.be.within(2, 4 * 1.1);
    expect(count('GET', undefined)).to.be.within(2, 4 * 1.1);
  });

  it('counts a member Lease left by a dead replica until it expires on its own clock, then deletes it', async () => {
    const ghost = 'secretsync-shard-member-0123456789abcdef';
    server.put(LEASES, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: ghost,
        labels: { 'secretsync.io/shard-lease-group': 'secretsync-shard', 'secretsync.io/shard-lease-role': 'member' },
      },
      // Its renew time is long past by any clock; but only our own clock counts: it expires a lease duration after we first saw it.
      spec: { holderIdentity: 'ghost', leaseDurationSeconds: 1, renewTime: '2020-01-01T00:00:00.000000Z' },
    } as never);
    const a = coordinator('a');
    const started = performance.now();
    await a.start();
    await waitFor('a to take its share beside the ghost', () => a.owned().size === 8);
    expect(a.members()).to.deep.equal(['a', 'ghost']);
    await waitFor('a to hold all shards once the ghost expired', () => a.owned().size === S, 3_000);
    expect(performance.now() - started).to.be.at.least(TIMING.leaseDurationMs - 50);
    expect(a.members()).to.deep.equal(['a']);
    // Unchanged for a second lease duration: deleted, so member Leases of renamed Pods do not pile up.
    await waitFor('the ghost Lease to be deleted', () => server.get(LEASES, ghost) === undefined, 3_000);
    expect(performance.now() - started).to.be.at.least(2 * TIMING.leaseDurationMs - 50);
  });

  it('handles the most shards a deployment may ask for (256): two replicas settle at 128 each', async () => {
    const timing = { shardCount: 256, leaseDurationMs: 5_000, renewDeadlineMs: 4_000, retryPeriodMs: 500 };
    const a = coordinator('a', timing);
    const b = coordinator('b', timing);
    await Promise.all([a.start(), b.start()]);
    await waitFor('128/128', () => a.owned().size === 128 && b.owned().size === 128, 10_000);
    const overlap = [...a.owned()].filter((shard) => b.owned().has(shard));
    expect(overlap).to.deep.equal([]);
  });

  it('refuses a shard count, prefix or timing it cannot work with', () => {
    const make = (options: Partial<ShardCoordinatorOptions>) => () =>
      new ShardCoordinator(server.auth(), { namespace: 'secretsync', identity: 'a', ...options }, logger);
    expect(make({ shardCount: 0 })).to.throw(ShardCoordinatorOptionsError);
    expect(make({ shardCount: 257 })).to.throw(ShardCoordinatorOptionsError);
    expect(make({ shardCount: 1.5 })).to.throw(ShardCoordinatorOptionsError);
    expect(make({ leasePrefix: 'Upper' })).to.throw(ShardCoordinatorOptionsError);
    expect(make({ leasePrefix: 'x'.repeat(41) })).to.throw(ShardCoordinatorOptionsError);
    expect(make({ identity: '' })).to.throw(ShardCoordinatorOptionsError);
    expect(make({ renewDeadlineMs: 15_000 })).to.throw(LeaderElectionTimingError);
    expect(make({ retryPeriodMs: 10_000 })).to.throw(LeaderElectionTimingError);
    expect(() => make({ shardCount: 4 })().fenceFor(4)).to.throw(RangeError);
  });
});
