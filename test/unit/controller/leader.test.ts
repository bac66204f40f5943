import { expect } from 'chai';
import { Writable } from 'node:stream';
import { LeaderElector, type LeaderElectionOptions } from '../../../src/controller/leader.js';
import type { KubeClient } from '../../../src/kube/client.js';
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
  client: KubeClient;
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
    const client = server.client();
    const elector = new LeaderElector(
      client,
      {
        namespace: 'secretsync',
        name: 'secretsync-leader',
        identity,
        leaseDurationSeconds: 1,
        renewDeadlineSeconds: 1,
        retryPeriodSeconds: 0.1,
        ...options,
      },
      logger,
    );
    const candidate: Candidate = {
      identity,
      elector,
      client,
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
    for (const c of candidates) c.elector.stop();
    await Promise.all(candidates.map((c) => c.done));
    for (const c of candidates) c.client.close();
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
    const a = campaign('a', { leaseDurationSeconds: 5, renewDeadlineSeconds: 4 });
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = campaign('b', { leaseDurationSeconds: 5, renewDeadlineSeconds: 4 });
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
    expect(Date.now() - failingFrom).to.be.at.least(900);
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
    const a = campaign('a', { leaseDurationSeconds: 15 });
    await waitFor('the create to be sent', () => server.requests.some((r) => r.method === 'POST'));
    a.elector.stop();
    expect(await a.done).to.equal('stopped');
    expect(lease()?.holderIdentity).to.equal('a');
    await a.elector.release();
    // Released: the Lease has no holder, so a standby need not wait 15 seconds.
    expect(lease()?.holderIdentity).to.equal('');
  });
});
