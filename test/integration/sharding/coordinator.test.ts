// Shard coordinators against the real control plane (issue 18): several in one
// process, each with its own identity and its own Lease traffic, as replicas
// would be. Claiming, takeover after a death, fencing of a paused replica, and
// rebalancing when replicas come and go. Timing is short (lease 3 s, renew
// deadline 2 s, retry 0.5 s) to keep the suite fast; with the production
// defaults (15 s / 10 s / 2 s) a dead replica's shards move after 15-17 s, a
// paused one stops writing after 10 s, and a graceful handover takes one 2 s pass.
import { expect } from 'chai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { NotShardOwnerError } from '../../../src/api/errors.js';
import type { KubeClient, WriteFence } from '../../../src/kube/client.js';
import type { KubeAuth } from '../../../src/kube/config.js';
import { createLogger } from '../../../src/observability/logger.js';
import { ShardCoordinator, type ShardCoordinatorOptions } from '../../../src/sharding/coordinator.js';
import { LABEL_SHARD_LEASE_GROUP, readShardLeases } from '../../../src/sharding/lease-holders.js';
import { waitFor } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';
import { OPERATOR_NAMESPACE, adminClient, ensureNamespace } from '../operator.js';

const S = 16;
const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases`;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const fails = (fence: WriteFence) => {
  try {
    fence.assertHeld();
    return false;
  } catch (err) {
    if (!(err instanceof NotShardOwnerError)) throw err;
    return true;
  }
};

/**
 * A TCP relay to the API server that can be cut (a network partition): open
 * connections are dropped and new ones hang unanswered until it is mended.
 */
class Partition {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  cut = false;
  port = 0;

  constructor(private readonly target: URL) {
    this.server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.cut) return; // never answered: the client's deadline ends the request
      const upstream = connect(Number(target.port), target.hostname);
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** The same credentials, through this relay. */
  auth(base: KubeAuth): KubeAuth {
    const server = `https://127.0.0.1:${this.port}`;
    return {
      getCurrentCluster: () => ({ server }),
      getCurrentContext: () => base.getCurrentContext(),
      applyToHTTPSOptions: (options) => base.applyToHTTPSOptions(options),
    };
  }

  sever(): void {
    this.cut = true;
    for (const socket of this.sockets) socket.destroy();
  }

  mend(): void {
    this.cut = false;
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('shard coordinators against the real control plane', function () {
  this.timeout(90_000);
  const logger = createLogger('error');
  let admin: KubeClient;
  let prefix: string;
  let coordinators: ShardCoordinator[];
  let partitions: Partition[];
  /** Every 100 ms while a test runs: shards that two coordinators reported owning at the same moment. */
  let overlaps: string[];
  let polling: Promise<void> | undefined;
  let pollingOn = false;

  function coordinator(identity: string, options: Partial<ShardCoordinatorOptions> = {}, auth?: KubeAuth) {
    const c = new ShardCoordinator(
      auth ?? sharedCluster().kubeConfig(),
      { namespace: OPERATOR_NAMESPACE, identity, shardCount: S, leasePrefix: prefix, ...TIMING, ...options },
      logger,
    );
    coordinators.push(c);
    return c;
  }

  function watchOverlaps(): void {
    pollingOn = true;
    polling = (async () => {
      while (pollingOn) {
        const seen = new Map<number, string>();
        for (const c of coordinators)
          for (const shard of c.owned()) {
            const other = seen.get(shard);
            if (other !== undefined) overlaps.push(`shard ${shard}: ${other} and ${c.identity}`);
            seen.set(shard, c.identity);
          }
        await sleep(100);
      }
    })();
  }

  /** The shard Leases of this test's group: holder and transitions by shard. */
  async function shardLeases(): Promise<{ holder: string; transitions: number }[]> {
    const byShard = await readShardLeases(admin, OPERATOR_NAMESPACE, { prefix, shardCount: S });
    return Array.from({ length: S }, (_, shard) => byShard.get(shard) ?? { holder: '', transitions: 0 });
  }

  const transitions = (leases: { transitions: number }[]) => leases.reduce((sum, l) => sum + l.transitions, 0);

  /** Waits until the coordinators hold the given counts (by identity), and the Leases say the same. */
  async function settled(counts: Record<string, number>, timeoutMs: number): Promise<void> {
    await waitFor(
      `shares ${JSON.stringify(counts)}`,
      async () => {
        for (const c of coordinators) if (c.owned().size !== (counts[c.identity] ?? 0)) return undefined;
        const leases = await shardLeases();
        for (const c of coordinators)
          for (const shard of c.owned()) if (leases[shard]?.holder !== c.identity) return undefined;
        return true;
      },
      timeoutMs,
      100,
    );
  }

  before(async () => {
    admin = adminClient(sharedCluster());
    await ensureNamespace(admin, OPERATOR_NAMESPACE);
  });

  beforeEach(() => {
    prefix = uniqueName('shard');
    coordinators = [];
    partitions = [];
    overlaps = [];
  });

  afterEach(async () => {
    pollingOn = false;
    await polling;
    for (const p of partitions) p.mend();
    await Promise.all(coordinators.map((c) => c.stop()));
    await Promise.all(partitions.map((p) => p.stop()));
    await admin.request('DELETE', LEASES, { query: { labelSelector: `${LABEL_SHARD_LEASE_GROUP}=${prefix}` } });
  });

  it('claiming: one replica takes all 16, a second joins and they hold 8 each, never one shard twice', async () => {
    const a = coordinator('replica-a');
    watchOverlaps();
    await a.start();
    await settled({ 'replica-a': S }, 10_000);
    expect(transitions(await shardLeases())).to.equal(0);

    const b = coordinator('replica-b');
    const joined = performance.now();
    await b.start();
    await settled({ 'replica-a': 8, 'replica-b': 8 }, 5 * TIMING.retryPeriodMs + 5_000);
    const took = performance.now() - joined;
    // Eight hand-overs and no more: nothing went back and forth.
    expect(transitions(await shardLeases())).to.equal(8);
    expect(overlaps).to.deep.equal([]);
    expect(a.members()).to.deep.equal(['replica-a', 'replica-b']);
    expect(b.members()).to.deep.equal(['replica-a', 'replica-b']);
    console.log(`      (8/8 within ${Math.round(took)} ms of the second replica's start)`);
  });

  it('takeover: a replica that dies without releasing loses its shards to the other within the lease duration plus a few seconds', async () => {
    const a = coordinator('replica-a');
    const b = coordinator('replica-b');
    watchOverlaps();
    await Promise.all([a.start(), b.start()]);
    await settled({ 'replica-a': 8, 'replica-b': 8 }, 15_000);
    const ofA = [...a.owned()];
    const fencesOfA = ofA.map((shard) => a.fenceFor(shard));

    const diedAt = performance.now();
    await a.stop({ release: false }); // its timers stop, its Leases stay as they were
    await waitFor('b to hold all shards', async () => (b.owned().size === S ? true : undefined), 15_000, 50);
    const took = performance.now() - diedAt;
    // b waits for the Leases to expire on its own clock (from when it last saw them change), then takes them.
    expect(took).to.be.within(TIMING.leaseDurationMs - TIMING.retryPeriodMs, TIMING.leaseDurationMs + 3_000);
    expect(fencesOfA.every(fails)).to.equal(true);
    const leases = await shardLeases();
    for (const shard of ofA) expect(leases[shard]?.holder).to.equal('replica-b');
    expect(overlaps).to.deep.equal([]);
    console.log(`      (all 16 on the survivor ${Math.round(took)} ms after the death)`);
  });

  it('fencing: a paused replica fails every fence before another can take over, and after resuming writes for none it lost', async () => {
    const partition = new Partition(new URL(sharedCluster().server));
    partitions.push(partition);
    await partition.start();
    let pausedFor = 0;
    const a = coordinator(
      'replica-a',
      { monotonicNow: () => performance.now() + pausedFor },
      partition.auth(sharedCluster().kubeConfig()),
    );
    const b = coordinator('replica-b');
    watchOverlaps();
    await Promise.all([a.start(), b.start()]);
    await settled({ 'replica-a': 8, 'replica-b': 8 }, 15_000);
    const ofA = [...a.owned()];
    const fencesOfA = ofA.map((shard) => a.fenceFor(shard));
    expect(fencesOfA.some(fails)).to.equal(false);

    // The pause: no traffic from a, and its clock jumps past the renew deadline while no timer of it runs.
    partition.sever();
    pausedFor = TIMING.renewDeadlineMs + 100;
    // Every fence fails at once, by the clock alone, while the Leases still name a (b cannot have taken them yet).
    expect(fencesOfA.every(fails)).to.equal(true);
    expect(fencesOfA.every((f) => f.signal.aborted)).to.equal(true);
    expect(a.owned().size).to.equal(0);
    const atPause = await shardLeases();
    for (const shard of ofA) expect(atPause[shard]?.holder).to.equal('replica-a');

    await waitFor('b to take every shard over', async () => (b.owned().size === S ? true : undefined), 15_000, 50);
    const transitionsBeforeResume = transitions(await shardLeases());

    // Resumed: its old fences stay failed; it holds none of what b took; it gets shards back only as b hands them over.
    partition.mend();
    await sleep(2 * TIMING.retryPeriodMs);
    expect(fencesOfA.every(fails)).to.equal(true);
    for (const shard of a.owned()) expect(b.owned().has(shard)).to.equal(false);
    await settled({ 'replica-a': 8, 'replica-b': 8 }, 15_000);
    // 8 to b on the takeover, 8 back to a through b's releases: nothing else changed hands.
    expect(transitions(await shardLeases()) - transitionsBeforeResume).to.equal(8);
    expect(overlaps).to.deep.equal([]);
  });

  it('rebalancing: 2 → 3 → 2 replicas moves only the shards that must move, and a graceful stop hands over within about a pass', async () => {
    // A long lease: a handover that took an expiry would take 20 s, far beyond what the test allows.
    const slow = { leaseDurationMs: 20_000, renewDeadlineMs: 15_000 };
    const a = coordinator('replica-a', slow);
    const b = coordinator('replica-b', slow);
    watchOverlaps();
    await Promise.all([a.start(), b.start()]);
    await settled({ 'replica-a': 8, 'replica-b': 8 }, 15_000);
    const before = await shardLeases();

    const c = coordinator('replica-c', slow);
    await c.start();
    // Shares by identity: a 6, b 5, c 5 — a gives 2, b gives 3.
    await settled({ 'replica-a': 6, 'replica-b': 5, 'replica-c': 5 }, 10_000);
    const three = await shardLeases();
    const moved = three.filter((l, shard) => l.holder !== before[shard]?.holder);
    expect(moved).to.have.length(5);
    expect(moved.every((l) => l.holder === 'replica-c')).to.equal(true);
    expect(transitions(three) - transitions(before)).to.equal(5);

    const stoppedAt = performance.now();
    await c.stop();
    await settled({ 'replica-a': 8, 'replica-b': 8 }, 10_000);
    const took = performance.now() - stoppedAt;
    expect(took).to.be.below(3_000);
    const two = await shardLeases();
    const movedBack = two.filter((l, shard) => l.holder !== three[shard]?.holder);
    expect(movedBack).to.have.length(5);
    expect(three.filter((l) => l.holder === 'replica-c')).to.have.length(5);
    for (let shard = 0; shard < S; shard++)
      if (three[shard]?.holder !== 'replica-c') expect(two[shard]?.holder).to.equal(three[shard]?.holder);
    expect(overlaps).to.deep.equal([]);
    console.log(`      (graceful stop: its 5 shards served again ${Math.round(took)} ms later)`);
  });
});
