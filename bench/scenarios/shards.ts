// shards: several active replicas on one machine (issue 18). N ManagedSecrets
// over a local store, R replicas started together with `--sharding` (16
// shards, Leases as the chart sets them up): the cold sync with the work split,
// each replica's peak RSS, a replica killed (SIGKILL) half-way through the cold
// sync, and, once everything is in sync, one paused (SIGSTOP) past its Lease
// and resumed: how long until every shard is served again, and how many writes
// went beyond the ones needed (duplicates; target 0).
import {
  OPERATOR_NAMESPACE,
  OperatorProcess,
  apiserverRequests,
  benchNamespace,
  diffRequests,
  operatorCounters,
  requestFigures,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import {
  Progress,
  createManagedSecrets,
  entryName,
  localSpec,
  localStoreNamespace,
  msName,
  msPath,
  timeoutFor,
  until,
} from '../lib/fixtures.js';
import { parsePrometheus, round, seconds, sleep } from '../lib/util.js';
import { leasesPath, type Lease } from '../../src/kube/lease.js';
import { readShardHolders } from '../../src/sharding/lease-holders.js';
import { LABEL_SHARD, shardOf } from '../../src/sharding/ownership.js';

const REPLICAS = 4;
const SHARDS = 16;
/** Lease timing as the chart's defaults: a dead replica's shards move after the lease duration. */
const LEASE = { duration: 15_000, renew: 10_000, retry: 2_000 };
/** ManagedSecrets changed while a replica is paused (in its shards), to see who serves them. */
const CHANGES = 20;

const identity = (i: number) => `bench-replica-${i}`;

/** Holder of every shard Lease that names one. */
const shardHolders = (ctx: BenchContext) => readShardHolders(ctx.kube, OPERATOR_NAMESPACE, { shardCount: SHARDS });

/**
 * Creates of Secrets the API server refused because the Secret was there
 * (409), cluster-wide: a create racing a hand-over costs a request and
 * changes nothing. Accepted writes are counted in the namespace, by its watch.
 */
async function refusedSecretCreates(ctx: BenchContext): Promise<number> {
  const res = await ctx.cluster.adminRequest('GET', '/metrics');
  let refused = 0;
  for (const s of parsePrometheus(res.body))
    if (
      s.name === 'apiserver_request_total' &&
      s.labels.resource === 'secrets' &&
      !s.labels.subresource &&
      s.labels.verb === 'POST' &&
      s.labels.code === '409'
    )
      refused += s.value;
  return refused;
}

/** Resolves with the time when every shard is held by one of `alive`. */
function allShardsHeldBy(ctx: BenchContext, alive: ReadonlySet<string>, timeoutMs: number): Promise<number> {
  return until(
    `all ${SHARDS} shards held by ${[...alive].join(', ')}`,
    async () => {
      const holders = await shardHolders(ctx);
      return holders.size === SHARDS && [...holders.values()].every((h) => alive.has(h));
    },
    timeoutMs,
    100,
  );
}

export async function shardsScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const namespace = benchNamespace('shards');
  ctx.log(`shards: creating ${n} store entries and ManagedSecrets in ${namespace}`);
  const fixture = await localStoreNamespace(ctx, namespace, n);
  await createManagedSecrets(ctx, namespace, n, (i) => localSpec(i, '1h'));
  const progress = await new Progress(ctx.kube, namespace).start();
  const replicas: (OperatorProcess | undefined)[] = [];
  const start = (i: number) =>
    OperatorProcess.start(ctx, {
      namespaces: [namespace],
      args: [
        '--leader-elect',
        'true',
        '--identity',
        identity(i),
        '--sharding',
        'true',
        '--shards',
        String(SHARDS),
        '--lease-duration',
        `${LEASE.duration}ms`,
        '--renew-deadline',
        `${LEASE.renew}ms`,
        '--retry-period',
        `${LEASE.retry}ms`,
      ],
    });
  try {
    // ---- cold sync, work split over R replicas; one killed half-way
    const before = await apiserverRequests(ctx.cluster);
    const refusedBefore = await refusedSecretCreates(ctx);
    // Every write to a bench Secret shows in the namespace's watch: a create as an add, any other
    // accepted write that changed it as an update. Each Secret should be created once and not touched.
    let updates = 0;
    progress.onSecretUpdate(() => updates++);
    ctx.log(`shards: starting ${REPLICAS} replicas`);
    const started = Date.now();
    for (let i = 0; i < REPLICAS; i++) replicas.push(await start(i));
    // Balanced: every shard held, each replica at its fair share (16 over 4: 4 each).
    const fairSplit = Array.from(
      { length: REPLICAS },
      (_, i) => Math.floor(SHARDS / REPLICAS) + (i < SHARDS % REPLICAS ? 1 : 0),
    ).sort((a, b) => a - b);
    let split: number[] = [];
    const balancedAt = await until(
      `the ${SHARDS} shards split ${fairSplit.join('/')}`,
      async () => {
        const counts = new Map<string, number>();
        for (const h of (await shardHolders(ctx)).values()) counts.set(h, (counts.get(h) ?? 0) + 1);
        split = [...counts.values()].sort((a, b) => a - b);
        return split.join('/') === fairSplit.join('/');
      },
      timeoutFor(0),
      100,
    );
    const balanced = { at: balancedAt, counts: split };
    await until(
      'half of the ManagedSecrets Ready',
      () => Promise.resolve(progress.readyCount >= n / 2),
      timeoutFor(n),
      50,
    );
    const victim = REPLICAS - 1;
    const victimPeak = replicas[victim]!.peakRssMiB();
    const readyAtKill = progress.readyCount;
    ctx.log(`shards: killing ${identity(victim)} at ${readyAtKill} Ready`);
    process.kill(replicas[victim]!.pid, 'SIGKILL');
    const killedAt = Date.now();
    const survivors = new Set(replicas.slice(0, victim).map((_, i) => identity(i)));
    const servedAgain = await allShardsHeldBy(ctx, survivors, LEASE.duration * 4);
    const allReady = await progress.waitAll(n, timeoutFor(n));
    await sleep(2_000);
    const coldRequests = requestFigures(diffRequests(await apiserverRequests(ctx.cluster), before));
    const coldUpdates = updates;
    const coldRefused = (await refusedSecretCreates(ctx)) - refusedBefore;
    const peaks = Object.fromEntries(
      replicas.map((r, i) => [identity(i), round(i === victim ? victimPeak : r!.peakRssMiB(), 1)]),
    );
    await replicas[victim]!.stop();
    replicas[victim] = undefined;

    // ---- pause one replica past its Lease, change ManagedSecrets of its shards, resume it.
    // Not the leader: a leader that loses its Lease exits by design (a restart makes it a standby).
    const leader = (await ctx.kube.get<Lease>(`${leasesPath(OPERATOR_NAMESPACE)}/secretsync-leader`)).spec
      .holderIdentity;
    const paused = [0, 1, 2].find((i) => identity(i) !== leader) ?? 0;
    const holdersBefore = await shardHolders(ctx);
    const pausedShards = new Set([...holdersBefore].filter(([, h]) => h === identity(paused)).map(([s]) => s));
    const inPausedShards = Array.from({ length: n }, (_, i) => i)
      .filter((i) => pausedShards.has(shardOf(namespace, msName(i), SHARDS)))
      .slice(0, CHANGES);
    const pausedWritesBefore = operatorCounters(await replicas[paused]!.metrics()).kubeWrites;
    const updatesBeforePause = updates;
    const refusedBeforePause = await refusedSecretCreates(ctx);
    ctx.log(`shards: pausing ${identity(paused)} (${pausedShards.size} shards)`);
    process.kill(replicas[paused]!.pid, 'SIGSTOP');
    const pausedAt = Date.now();
    const others = new Set([...survivors].filter((id) => id !== identity(paused)));
    const takenOver = await allShardsHeldBy(ctx, others, LEASE.duration * 4);
    // Changes in the paused replica's former shards: served by their new owners.
    const changeStart = Date.now();
    for (const i of inPausedShards) {
      await fixture.store.put(entryName(i), { a: `changed-${i}`, b: `b-${i}`, c: `c-${i}` });
      await ctx.kube.request('PATCH', `${msPath(namespace)}/${msName(i)}`, {
        body: { metadata: { annotations: { 'secretsync.io/force-sync': String(changeStart) } } },
        contentType: 'application/merge-patch+json',
      });
    }
    const changed = await until(
      `${inPausedShards.length} changes synced by the new owners`,
      async () => {
        let done = 0;
        for (const i of inPausedShards) {
          const s = await ctx.kube.get<{ data?: Record<string, string> }>(
            `/api/v1/namespaces/${namespace}/secrets/${msName(i)}`,
          );
          if (Buffer.from(s.data?.a ?? '', 'base64').toString() === `changed-${i}`) done++;
        }
        return done === inPausedShards.length;
      },
      60_000,
      200,
    );
    ctx.log(`shards: resuming ${identity(paused)}`);
    process.kill(replicas[paused]!.pid, 'SIGCONT');
    const resumedAt = Date.now();
    // It rejoins and wins back a share; everything it takes is in sync: it should write nothing.
    const rebalanced = await until(
      `${identity(paused)} to hold shards again`,
      async () => [...(await shardHolders(ctx)).values()].includes(identity(paused)),
      LEASE.duration * 4,
      200,
    );
    await sleep(5_000);
    const pausedWritesAfter = operatorCounters(await replicas[paused]!.metrics()).kubeWrites;
    const pauseUpdates = updates - updatesBeforePause;
    const pauseRefused = (await refusedSecretCreates(ctx)) - refusedBeforePause;
    const labelled = progress.managed
      .list()
      .filter(
        (ms) => ms.metadata.labels?.[LABEL_SHARD] === String(shardOf(namespace, ms.metadata.name, SHARDS)),
      ).length;
    return {
      replicas: REPLICAS,
      pausedReplica: identity(paused),
      pausedReplicaWasLeader: identity(paused) === leader,
      shards: SHARDS,
      shardSplit: balanced.counts.join('/'),
      shardsBalancedSeconds: seconds(balanced.at - started),
      allReadySeconds: seconds(allReady - started),
      syncsPerSecond: round(n / ((allReady - started) / 1000), 1),
      labelledManagedSecrets: labelled,
      peakRssMiB: peaks,
      peakRssMiBMax: Math.max(...Object.values(peaks)),
      coldApiRequests: coldRequests.apiRequests as number,
      coldSecretsCreated: progress.secrets.list().length,
      coldSecretCreatesRefused: coldRefused,
      // A Secret changed after its create during the cold sync is a duplicate write (the killed replica's included).
      coldDuplicateSecretWrites: coldUpdates,
      killedAtReady: readyAtKill,
      shardsServedAgainAfterKillSeconds: seconds(servedAgain - killedAt),
      pausedShards: pausedShards.size,
      shardsServedAgainAfterPauseSeconds: seconds(takenOver - pausedAt),
      changesInPausedShards: inPausedShards.length,
      changesSyncedSeconds: seconds(changed - changeStart),
      pausedReplicaBackSeconds: seconds(rebalanced - resumedAt),
      pausedReplicaWritesAfterResume: pausedWritesAfter - pausedWritesBefore,
      pauseSecretUpdates: pauseUpdates,
      pauseSecretCreatesRefused: pauseRefused,
      pauseDuplicateSecretWrites: pauseUpdates - inPausedShards.length,
    };
  } finally {
    for (const r of replicas) {
      if (!r) continue;
      try {
        process.kill(r.pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await r.stop();
    }
    await progress.stop();
    fixture.cleanup();
  }
}
