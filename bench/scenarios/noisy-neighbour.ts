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
 * twice: while the noisy namespace is empty, and again right after N noisy
 * ManagedSecrets arrive there (failing on missing keys or on stores whose
 * endpoint never answers, a tenth asking for `refreshInterval: 1ms`). Target:
 * the quiet namespace's p99 stays under a second.
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
    // Busy: its syncs hold as many workers as it may take (they wait on the hanging stores), or its
    // failures are coming in (a bounded wait; the figures say how busy it was).
    const wanted = Math.min(100, Math.floor(mix.failing / 2));
    const heldWanted = Math.min(Math.floor(ctx.options.operatorConcurrency / 2), Math.ceil(mix.failing / 2));
    const busyBy = Date.now() + 60_000;
    while (Date.now() < busyBy) {
      const c = diffCounters(operatorCounters(await sampler.scrape()), before);
      if (c.syncsError >= wanted || hanging.open >= heldWanted) break;
      await sleep(250);
    }

    ctx.log(`noisy-neighbour: ${changes} changes in the quiet namespace, the noisy one busy`);
    const windowStart = Date.now();
    const atStart = operatorCounters(await sampler.scrape());
    const hitsAtStart = hanging.hits;
    // Workers the noisy namespace holds on the hanging stores, sampled through the window.
    const held: number[] = [];
    const server = hanging;
    const heldTimer = setInterval(() => held.push(server.open), 100);
    let busy: Awaited<ReturnType<typeof measureChanges>>;
    try {
      busy = await measureChanges(ctx, target, changes, CHANGE_PACE_MS, { firstRound: alone.nextRound });
    } finally {
      clearInterval(heldTimer);
    }
    const windowSeconds = (Date.now() - windowStart) / 1000;
    const during = diffCounters(operatorCounters(await sampler.scrape()), atStart);
    const sinceNoisy = diffCounters(operatorCounters(await sampler.scrape()), before);
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
      ...latencyFigures('busy', busy),
      busyWindowSeconds: round(windowSeconds, 1),
      busyNoisyErrorsPerSecond: round(during.syncsError / windowSeconds, 1),
      busyHangingConnections: hanging.hits - hitsAtStart,
      busyWorkersHeldMin: held.length > 0 ? Math.min(...held) : Number.NaN,
      busyWorkersHeldMean: round(held.reduce((a, b) => a + b, 0) / Math.max(1, held.length), 1),
      noisyErrorsTotal: sinceNoisy.syncsError,
      hangingConnectionsTotal: hanging.hits - hitsBefore,
      queueDepthMax: sampled.queueDepthMax,
      eventLoopStartupMs: sampled.eventLoopStartupMs,
      eventLoopMaxMs: sampled.eventLoopMaxMs,
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
