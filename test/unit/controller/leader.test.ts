import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { NotLeaderError } from '../../../src/api/errors.js';
import {
  LeaderElectionTimingError,
  LeaderElector,
  type LeaderElectionOptions,
} from '../../../src/controller/leader.js';
import { createLogger } from '../../../src/observability/logger.js';
import { FakeApiServer } from '../kube/fake-apiserver.js';

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/secretsync/leases';

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** An elector, with what became of it. */
interface Candidate {
  identity: string;
  elector: LeaderElector;
  startedLeadingAt: number | undefined;
  result: 'lost' | 'stopped' | undefined;
  done: Promise<'lost' | 'stopped'>;
}

describe('LeaderElector', function () {
  this.timeout(10_000);
  let server: FakeApiServer;
  let candidates: Candidate[];
  const logs: string[] = [];
  const logger = createLogger(
    'debug',
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(chunk.toString('utf8'));
        cb();
      },
    }),
  );

  const lease = () => server.get(LEASES, 'secretsync-leader')?.spec as LeaseSpec | undefined;

  function campaign(identity: string, options: Partial<LeaderElectionOptions> = {}): Candidate {
    const elector = new LeaderElector(
      server.auth(),
      {
        namespace: 'secretsync',
        name: 'secretsync-leader',
        identity,
        leaseDurationMs: 1_000,
        renewDeadlineMs: 800,
        retryPeriodMs: 100,
        ...options,
      },
      logger,
    );
    const candidate: Candidate = {
      identity,
      elector,
      startedLeadingAt: undefined,
      result: undefined,
      done: Promise.resolve('stopped'),
    };
    candidate.done = elector.run(() => {
      candidate.startedLeadingAt = Date.now();
    });
    void candidate.done.then((r) => (candidate.result = r));
    candidates.push(candidate);
    return candidate;
  }

  const leaders = () => candidates.filter((c) => c.elector.isLeader());

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    server.declare(LEASES);
    candidates = [];
    logs.length = 0;
  });

  afterEach(async () => {
    server.hangWhen = undefined;
    for (const c of candidates) c.elector.stop();
    await Promise.all(candidates.map((c) => c.done));
    // release() also closes each elector's own client.
    await Promise.all(candidates.map((c) => c.elector.release()));
    await server.stop();
  });

  it('creates the Lease and leads when there is none', async () => {
    const a = campaign('a');
    await waitFor('a to lead', () => a.elector.isLeader());
    expect(a.startedLeadingAt).to.be.a('number');
    const spec = lease();
    expect(spec?.holderIdentity).to.equal('a');
    expect(spec?.leaseDurationSeconds).to.equal(1);
    expect(spec?.leaseTransitions).to.equal(0);
    expect(spec?.renewTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('keeps renewing while it leads', async () => {
    const a = campaign('a');
    await waitFor('a to lead', () => a.elector.isLeader());
    const first = lease()?.renewTime;
    await sleep(300);
    expect(lease()?.renewTime).to.not.equal(first);
    expect(lease()?.holderIdentity).to.equal('a');
  });

  it('lets only one of two candidates lead', async () => {
    const a = campaign('a');
    const b = campaign('b');
    await waitFor('a leader', () => leaders().length > 0);
    // Well past the lease duration: the leader renews, so the standby never takes over.
    await sleep(2_000);
    expect(leaders()).to.have.length(1);
    const leader = leaders()[0] as Candidate;
    const standby = leader === a ? b : a;
    expect(standby.startedLeadingAt).to.equal(undefined);
    expect(lease()?.holderIdentity).to.equal(leader.identity);
    expect(lease()?.leaseTransitions).to.equal(0);
  });

  it('lets the standby take over once the leader stops renewing, after the lease duration', async () => {
    const a = campaign('a');
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = campaign('b');
    await sleep(300);
    expect(b.elector.isLeader()).to.equal(false);

    a.elector.stop(); // no release: as if the leader hung or died
    expect(await a.done).to.equal('stopped');
    const stoppedAt = Date.now();
    await waitFor('b to lead', () => b.elector.isLeader(), 4_000);
    const waited = Date.now() - stoppedAt;
    // The last renewal was at most one retry period before the stop.
    expect(waited).to.be.at.least(800);
    expect(waited).to.be.below(2_500);
    expect(lease()?.holderIdentity).to.equal('b');
    expect(lease()?.leaseTransitions).to.equal(1);
  });

  it('hands over at once on release', async () => {
    const a = campaign('a', { leaseDurationMs: 5_000, renewDeadlineMs: 4_000 });
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = campaign('b', { leaseDurationMs: 5_000, renewDeadlineMs: 4_000 });
    await sleep(300);
    expect(b.elector.isLeader()).to.equal(false);

    a.elector.stop();
    await a.done;
    const releasedAt = Date.now();
    await a.elector.release();
    expect(a.elector.isLeader()).to.equal(false);
    await waitFor('b to lead', () => b.elector.isLeader(), 2_000);
    expect(Date.now() - releasedAt).to.be.below(1_000);
    expect(lease()?.holderIdentity).to.equal('b');
    // Taking over a released (holderless) Lease is not counted as a transition.
    expect(lease()?.leaseTransitions).to.equal(0);
  });

  it('does not release a Lease someone else now holds', async () => {
    const a = campaign('a');
    await waitFor('a to lead', () => a.elector.isLeader());
    a.elector.stop();
    await a.done;
    const current = server.get(LEASES, 'secretsync-leader');
    if (!current) throw new Error('no Lease');
    (current.spec as LeaseSpec).holderIdentity = 'z';
    server.put(LEASES, current);
    await a.elector.release();
    expect(lease()?.holderIdentity).to.equal('z');
  });

  it('reports lost when it cannot renew within the renew deadline', async () => {
    const a = campaign('a');
    await waitFor('a to lead', () => a.elector.isLeader());
    server.failPrefix = LEASES;
    const failingFrom = Date.now();
    expect(await a.done).to.equal('lost');
    // The last renewal was sent at most one retry period (100 ms) before the failures began.
    expect(Date.now() - failingFrom).to.be.at.least(650);
    expect(a.elector.isLeader()).to.equal(false);
    expect(logs.join('')).to.include('lost the leader Lease');
  });

  it('stops campaigning on stop, resolving stopped', async () => {
    const a = campaign('a');
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = campaign('b');
    await sleep(150);
    b.elector.stop();
    expect(await b.done).to.equal('stopped');
    expect(b.startedLeadingAt).to.equal(undefined);
  });

  it('hands over at once on release even when stop came while its campaign was winning', async () => {
    // The create of the Lease is in flight when stop is called, and then succeeds.
    server.writeDelayMs = 200;
    // A retry period (the longest one Lease request may take) longer than the delay: the create is not given up.
    const a = campaign('a', { leaseDurationMs: 15_000, retryPeriodMs: 500 });
    await waitFor('the create to be sent', () => server.requests.some((r) => r.method === 'POST'));
    a.elector.stop();
    expect(await a.done).to.equal('stopped');
    expect(lease()?.holderIdentity).to.equal('a');
    await a.elector.release();
    // Released: the Lease has no holder, so a standby need not wait 15 seconds.
    expect(lease()?.holderIdentity).to.equal('');
  });

  describe('the write fence', () => {
    const isLease = (_method: string, path: string) => path.startsWith(LEASES);

    it('closes at the renew deadline while the renewal request hangs, and aborts that request', async () => {
      // The per-request timeout (the retry period, 1.5 s) is longer than what is left of the renew
      // deadline (2 s) when a renewal starts: only a timer can end leadership on time.
      const a = campaign('a', { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 1_500 });
      await waitFor('a to lead', () => a.elector.isLeader());
      expect(() => a.elector.fence.assertHeld()).to.not.throw();
      server.hangWhen = isLease;
      await waitFor('a renewal to hang', () => server.hung.length > 0, 3_000);
      const hungAt = server.hung[0]?.at ?? 0;
      expect(await a.done).to.equal('lost');
      const lostAfter = Date.now() - hungAt;
      // Renewals start one retry period after the last success, so the deadline is 0.5 s into the hung
      // request, a second before that request's own timeout could have ended it.
      expect(lostAfter).to.be.below(1_200);
      expect(a.elector.isLeader()).to.equal(false);
      expect(a.elector.fence.signal.aborted).to.equal(true);
      expect(() => a.elector.fence.assertHeld()).to.throw(NotLeaderError);
      // The hung renewal was cut off when leadership ended, not left to its timeout.
      await waitFor('the hung renewal to be aborted', () => server.hung[0]?.closedAt !== undefined, 1_000);
      expect((server.hung[0]?.closedAt ?? 0) - hungAt).to.be.below(1_300);
    });

    it('gives up a hung Lease request after one retry period while campaigning', async () => {
      server.hangWhen = isLease;
      campaign('a', { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 });
      await waitFor('two hung attempts', () => server.hung.length >= 2, 3_000);
      const first = server.hung[0];
      await waitFor('the first attempt to be given up', () => first?.closedAt !== undefined, 1_000);
      const took = (first?.closedAt ?? 0) - (first?.at ?? 0);
      expect(took).to.be.at.least(250);
      expect(took).to.be.below(800);
    });

    it('aborts writes in flight on the fenced client and refuses new ones when leadership ends', async () => {
      const a = campaign('a', { leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 300 });
      await waitFor('a to lead', () => a.elector.isLeader());
      const SECRETS = '/api/v1/namespaces/app/secrets';
      server.declare(SECRETS);
      const workers = server.client({ fence: a.elector.fence });
      try {
        server.hangWhen = (method, path) => isLease(method, path) || (method === 'POST' && path === SECRETS);
        const write = workers.request('POST', SECRETS, {
          body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } },
        });
        const outcome = write.then(
          () => 'written',
          (err: unknown) => err,
        );
        expect(await a.done).to.equal('lost');
        const err = await outcome;
        // Aborted in flight by the fence, and said so.
        expect(err).to.be.instanceOf(NotLeaderError);
        const sentBefore = server.requests.length;
        let refused: unknown;
        try {
          await workers.request('POST', SECRETS, {
            body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 't' } },
          });
        } catch (e) {
          refused = e;
        }
        expect(refused).to.be.instanceOf(NotLeaderError);
        expect(server.requests.length).to.equal(sentBefore);
        // Reads are not fenced: a standby keeps its caches.
        await workers.get(SECRETS);
      } finally {
        workers.close();
      }
    });

    it('says "not held" after a pause without waiting for a timer, and writes nothing to the Lease after', async () => {
      let jumpedMs = 0;
      const a = campaign('a', {
        leaseDurationMs: 3_000,
        renewDeadlineMs: 2_000,
        retryPeriodMs: 200,
        monotonicNow: () => performance.now() + jumpedMs,
      });
      await waitFor('a to lead', () => a.elector.isLeader());
      expect(() => a.elector.fence.assertHeld()).to.not.throw();
      // As if the process had been stopped for 5 s: it ran no timers, and the next thing it does is write.
      jumpedMs = 5_000;
      expect(() => a.elector.fence.assertHeld()).to.throw(NotLeaderError);
      expect(a.elector.fence.signal.aborted).to.equal(true);
      expect(a.elector.isLeader()).to.equal(false);
      const leaseWritesBefore = server.requests.filter((r) => r.method !== 'GET').length;
      expect(await a.done).to.equal('lost');
      await sleep(500);
      expect(server.requests.filter((r) => r.method !== 'GET').length).to.equal(leaseWritesBefore);
      // release() after losing hands nothing over: the Lease may already be someone else's.
      await a.elector.release();
      expect(lease()?.holderIdentity).to.equal('a');
    });

    it('does not count a renewal whose answer arrives after the renew deadline', async () => {
      let jumpedMs = 0;
      const a = campaign('a', {
        leaseDurationMs: 3_000,
        renewDeadlineMs: 2_000,
        retryPeriodMs: 500,
        monotonicNow: () => performance.now() + jumpedMs,
      });
      await waitFor('a to lead', () => a.elector.isLeader());
      server.writeDelayMs = 200;
      const puts = server.requests.filter((r) => r.method === 'PUT').length;
      await waitFor(
        'a renewal to be sent',
        () => server.requests.filter((r) => r.method === 'PUT').length > puts,
        2_000,
      );
      // The process "pauses" while its renewal is in flight; the answer comes after the deadline.
      jumpedMs = 5_000;
      expect(await a.done).to.equal('lost');
      expect(a.elector.isLeader()).to.equal(false);
    });

    it('closes the fence of a leader that stopped renewing before a standby can take over', async () => {
      const timing = { leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 200 };
      const a = campaign('a', timing);
      await waitFor('a to lead', () => a.elector.isLeader());
      const b = campaign('b', timing);
      let fencedAt: number | undefined;
      a.elector.fence.signal.addEventListener('abort', () => (fencedAt = Date.now()));
      a.elector.stop(); // no release, no more renewals: as if it hung
      await waitFor('b to lead', () => b.elector.isLeader(), 4_000);
      expect(fencedAt, 'the fence closed').to.be.a('number');
      // The margin is leaseDuration - renewDeadline (0.5 s), less the time b took to see the last renewal.
      expect(b.startedLeadingAt ?? 0).to.be.above((fencedAt ?? Infinity) + 200);
    });

    it('refuses timing that could let a paused leader write after a takeover', () => {
      const make = (timing: Partial<LeaderElectionOptions>) => () =>
        new LeaderElector(server.auth(), { namespace: 'n', name: 'l', identity: 'x', ...timing }, logger);
      expect(make({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).to.throw(
        LeaderElectionTimingError,
        /--renew-deadline .* must be shorter than --lease-duration/,
      );
      expect(make({ renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).to.throw(
        LeaderElectionTimingError,
        /--retry-period .* must be shorter than --renew-deadline/,
      );
      expect(make({ retryPeriodMs: 0 })).to.throw(LeaderElectionTimingError, /positive/);
      expect(make({})).to.not.throw();
    });
  });
});
