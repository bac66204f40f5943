// The noisy-neighbour scenario: does one namespace's trouble (syncs that fail
// by the thousand, syncs that hang on a backend) slow down another namespace's
// changes? The fair work queue says it must not; this measures it end to end.
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
 * three times: while the noisy namespace is empty ("alone"); right after half
 * of its N ManagedSecrets arrive, failing on keys that do not exist (status
 * writes, Events, back-offs), a tenth asking for `refreshInterval: 1ms`
 * ("flood"); and once the other half, on stores whose endpoint never answers,
 * hold the workers the noisy namespace may take ("held"). Target: the quiet
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

    const before = operatorCounters(await sampler.scrape());
    const hitsBefore = hanging.hits;
    const server = hanging;
    const live = sampler;
    const errorsSince = async () => diffCounters(operatorCounters(await live.scrape()), before).syncsError;

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
        // Both namespaces: the quiet one writes about one status per change.
        [`${prefix}StatusWritesPerSecond`]: round(during.statusWrites / windowSeconds, 1),
        [`${prefix}HangingConnections`]: server.hits - hitsAtStart,
        [`${prefix}WorkersHeldMin`]: held.length > 0 ? Math.min(...held) : Number.NaN,
        [`${prefix}WorkersHeldMean`]: round(held.reduce((a, b) => a + b, 0) / Math.max(1, held.length), 1),
      };
    };

    // Flood: the failing ManagedSecrets on missing keys (they fail at once, write status, back off
    // and come back) and the ones on a 1ms refresh.
    const missing = Math.ceil(mix.failing / (mix.hangingStores > 0 ? 2 : 1));
    ctx.log(`noisy-neighbour: ${missing} ManagedSecrets on missing keys and ${mix.floor} on a 1ms refresh`);
    const createStarted = Date.now();
    noisyStore = await localStoreNamespace(ctx, noisy, mix.floor);
    await createNoisyManagedSecrets(ctx, noisy, mix, 'missing');
    const floodCreateSeconds = seconds(Date.now() - createStarted);
    const floodWanted = Math.min(100, Math.floor(missing / 2));
    for (const until = Date.now() + 60_000; Date.now() < until; await sleep(250))
      if ((await errorsSince()) >= floodWanted) break;
    const flood = await window('flood');

    // Held: then the ones on stores whose endpoint never answers, once their syncs hold as many
    // workers as the namespace may take (a bounded wait; the figures say how many it held).
    ctx.log(`noisy-neighbour: ${mix.failing - missing} ManagedSecrets on ${mix.hangingStores} hanging stores`);
    const heldStarted = Date.now();
    await hangingStores(ctx, noisy, hanging.url, mix.hangingStores);
    await createNoisyManagedSecrets(ctx, noisy, mix, 'hanging');
    const heldCreateSeconds = seconds(Date.now() - heldStarted);
    const heldWanted = Math.min(Math.floor(ctx.options.operatorConcurrency / 2), mix.failing - missing);
    for (const until = Date.now() + 60_000; Date.now() < until; await sleep(250)) if (server.open >= heldWanted) break;
    const held = await window('held');
    const createSeconds = round(floodCreateSeconds + heldCreateSeconds, 2);

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
      ...flood,
      ...held,
      noisyErrorsTotal: sinceNoisy,
      hangingConnectionsTotal: hanging.hits - hitsBefore,
      queueDepthMax: sampled.queueDepthMax,
      eventLoopStartupMs: sampled.eventLoopStartupMs,
      eventLoopMaxMs: sampled.eventLoopMaxMs,
      eventLoopWindowsOver100Ms: sampled.eventLoopOver100Ms,
      eventLoopWindowsOver100MsAt: sampled.eventLoopOver100MsAt.join(' '),
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
