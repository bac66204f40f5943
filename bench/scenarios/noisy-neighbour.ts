import { latencyFigures, measureChanges, type ChangeTarget } from '../lib/changes.js';
import {
  OperatorProcess,
  benchNamespace,
  diffCounters,
  ensureNamespace,
  operatorCounters,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import { Progress, createManagedSecrets, localSpec, localStoreNamespace, timeoutFor } from '../lib/fixtures.js';
import { OperatorSampler } from '../lib/sampler.js';
import { createNoisyManagedSecrets, hangingServer, hangingStores, type HangingServer, type NoisyMix } from '../lib/tenants.js';
import { round, seconds, sleep } from '../lib/util.js';

/** ManagedSecrets in the quiet namespace. */
export const QUIET_SIZE = 50;
/** One change every … ms in the latency measurements. */
export const CHANGE_PACE_MS = 50;

/** The noisy namespace at size N: mostly failing objects, a tenth on a 1 ms refresh, up to 16 hanging stores. */
export function noisyMix(n: number): NoisyMix {
  const floor = Math.max(1, Math.floor(n / 10));
  const failing = Math.max(2, n - floor);
  return { failing, floor, hangingStores: Math.min(16, Math.max(1, Math.floor(failing / 20))) };
}

/**
 * 9. noisy-neighbour: one operator watches a quiet namespace (50 ManagedSecrets,
 * in sync) and a noisy one. The quiet namespace's change latency is measured
 * three times: while the noisy namespace is empty ("alone"); right after N noisy
 * ManagedSecrets arrive there (failing on missing keys or on stores whose
 * endpoint never answers, a tenth asking for `refreshInterval: 1ms`), while its
 * syncs hold the workers it may take ("busy"); and once its failures flow,
 * circuit breakers open and back-offs run ("churn"). Target: the quiet
 * namespace's p99 stays under a second.
 */
export async function noisyNeighbourScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const changes = Math.max(10, ctx.options.changes);
  const mix = noisyMix(n);
  const quiet = benchNamespace('quiet');
  const noisy = benchNamespace('noisy');
  ctx.log(`noisy-neighbour: quiet namespace ${quiet} (${QUIET_SIZE}), noisy namespace ${noisy} (${n})`);
  const fixture = await localStoreNamespace(ctx, quiet, QUIET_SIZE);
  await createManagedSecrets(ctx, quiet, QUIET_SIZE, (i) => localSpec(i, '1h'));
  await ensureNamespace(ctx.kube, noisy);
  const progress = await new Progress(ctx.kube, quiet).start();
  let hanging: HangingServer | undefined;
  let noisyStore: Awaited<ReturnType<typeof localStoreNamespace>> | undefined;
  let operator: OperatorProcess | undefined;
  let sampler: OperatorSampler | undefined;
  try {
    hanging = await hangingServer();
    operator = await OperatorProcess.start(ctx, {
      namespaces: [quiet, noisy],
      args: ['--allowed-endpoints', hanging.url],
    });
    sampler = new OperatorSampler(operator);
    await progress.waitAll(QUIET_SIZE, timeoutFor(QUIET_SIZE));
    const target: ChangeTarget = { namespace: quiet, fixture, progress, objects: QUIET_SIZE };

    ctx.log(`noisy-neighbour: ${changes} changes in the quiet namespace, the noisy one empty`);
    const alone = await measureChanges(ctx, target, changes, CHANGE_PACE_MS);

    ctx.log(
      `noisy-neighbour: ${mix.failing} failing ManagedSecrets (${mix.hangingStores} hanging stores) and ${mix.floor} on a 1ms refresh`,
    );
    const before = operatorCounters(await sampler.scrape());
    const hitsBefore = hanging.hits;
    const createStarted = Date.now();
    noisyStore = await localStoreNamespace(ctx, noisy, mix.floor);
    await hangingStores(ctx, noisy, hanging.url, mix.hangingStores);
    await createNoisyManagedSecrets(ctx, noisy, mix);
    const createSeconds = seconds(Date.now() - createStarted);
    // Busy, first: its syncs hold as many workers as it may take (they wait on the hanging stores), or its
    // failures are coming in (a bounded wait; the figures say how busy it was).
    const server = hanging;
    const live = sampler;
    const errorsSince = async () => diffCounters(operatorCounters(await live.scrape()), before).syncsError;
    const wanted = Math.min(100, Math.floor(mix.failing / 2));
    const heldWanted = Math.min(Math.floor(ctx.options.operatorConcurrency / 2), Math.ceil(mix.failing / 2));
    for (const until = Date.now() + 60_000; Date.now() < until; await sleep(250))
      if ((await errorsSince()) >= wanted || server.open >= heldWanted) break;

    /** The quiet namespace's changes, with what the noisy one did meanwhile, under `prefix`. */
    let round0 = alone.nextRound;
    const window = async (prefix: string): Promise<Figures> => {
      ctx.log(`noisy-neighbour: ${changes} changes in the quiet namespace, the noisy one busy (${prefix})`);
      const windowStart = Date.now();
      const atStart = operatorCounters(await live.scrape());
      const hitsAtStart = server.hits;
      // Workers the noisy namespace holds on the hanging stores, sampled through the window.
      const held: number[] = [];
      const heldTimer = setInterval(() => held.push(server.open), 100);
      let latencies: Awaited<ReturnType<typeof measureChanges>>;
      try {
        latencies = await measureChanges(ctx, target, changes, CHANGE_PACE_MS, { firstRound: round0 });
      } finally {
        clearInterval(heldTimer);
      }
      round0 = latencies.nextRound;
      const windowSeconds = (Date.now() - windowStart) / 1000;
      const during = diffCounters(operatorCounters(await live.scrape()), atStart);
      return {
        ...latencyFigures(prefix, latencies),
        [`${prefix}WindowSeconds`]: round(windowSeconds, 1),
        [`${prefix}NoisyErrorsPerSecond`]: round(during.syncsError / windowSeconds, 1),
        [`${prefix}HangingConnections`]: server.hits - hitsAtStart,
        [`${prefix}WorkersHeldMin`]: held.length > 0 ? Math.min(...held) : Number.NaN,
        [`${prefix}WorkersHeldMean`]: round(held.reduce((a, b) => a + b, 0) / Math.max(1, held.length), 1),
      };
    };
    const busy = await window('busy');
    // Then, once failures flow (breakers open, back-offs run): a busy namespace of another kind.
    const churnWanted = Math.min(300, Math.floor(mix.failing / 2));
    for (const until = Date.now() + 120_000; Date.now() < until; await sleep(500))
      if ((await errorsSince()) >= churnWanted) break;
    const churnAfterSeconds = seconds(Date.now() - createStarted);
    const churn = await window('churn');

    const sinceNoisy = await errorsSince();
    const peakRssMiB = operator.peakRssMiB();
    const sampled = await sampler.stop();
    sampler = undefined;
    return {
      quietManagedSecrets: QUIET_SIZE,
      noisyManagedSecrets: mix.failing + mix.floor,
      noisyFailing: mix.failing,
      noisyHangingStores: mix.hangingStores,
      noisyFloorRefresh: mix.floor,
      noisyCreateSeconds: createSeconds,
      paceMs: CHANGE_PACE_MS,
      ...latencyFigures('alone', alone),
      ...busy,
      churnAfterSeconds,
      ...churn,
      noisyErrorsTotal: sinceNoisy,
      hangingConnectionsTotal: hanging.hits - hitsBefore,
      queueDepthMax: sampled.queueDepthMax,
      eventLoopStartupMs: sampled.eventLoopStartupMs,
      eventLoopMaxMs: sampled.eventLoopMaxMs,
      eventLoopWindowsOver100Ms: sampled.eventLoopOver100Ms,
      peakRssMiB: round(peakRssMiB, 1),
    };
  } finally {
    await sampler?.stop();
    await operator?.stop();
    await progress.stop();
    await hanging?.close();
    fixture.cleanup();
    noisyStore?.cleanup();
  }
}
