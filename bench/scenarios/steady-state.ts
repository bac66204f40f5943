import {
  apiserverRequests,
  diffCounters,
  diffRequests,
  operatorCounters,
  requestFigures,
  requestsObject,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import { PROPERTIES } from '../lib/fixtures.js';
import { round, sleep } from '../lib/util.js';
import { coldSync } from './common.js';

/**
 * 3. steady-state: after a cold sync, nothing changes for several refresh
 * intervals: what does keeping N in sync cost? Target: no writes at all,
 * backend reads no more than the distinct keys per interval.
 */
export async function steadyStateScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const interval = ctx.options.refreshSeconds;
  const intervals = ctx.options.intervals;
  const run = await coldSync(ctx, 'steady-state', n, { refreshInterval: `${interval}s` });
  try {
    // Let the first refresh round after the cold sync start, so we measure the steady state, not the tail of the sync.
    await sleep(interval * 1000);
    const counters0 = operatorCounters(await run.operator.metrics());
    const requests0 = await apiserverRequests(ctx.cluster);
    ctx.log(`steady-state: observing ${intervals} refresh intervals of ${interval} s`);
    const started = Date.now();
    await sleep(interval * intervals * 1000);
    const minutes = (Date.now() - started) / 60_000;
    const counters = diffCounters(operatorCounters(await run.operator.metrics()), counters0);
    const requests = diffRequests(await apiserverRequests(ctx.cluster), requests0);
    const api = requestFigures(requests);
    const distinctRefs = n * PROPERTIES.length;
    const { peakRssMiB } = await run.operator.stop();
    return {
      refreshIntervalSeconds: interval,
      intervals,
      coldSyncSeconds: run.figures.allReadySeconds as number,
      secretWrites: api.apiSecretWrites as number,
      statusWrites: api.apiStatusWrites as number,
      apiWrites: api.apiWrites as number,
      operatorKubeWrites: counters.kubeWrites,
      apiRequestsPerMinute: round((api.apiRequests as number) / minutes, 1),
      syncsPerInterval: round((counters.syncsUnchanged + counters.syncsSynced) / intervals, 1),
      backendReadsPerInterval: round(counters.providerReads / intervals, 1),
      distinctKeysPerInterval: distinctRefs,
      distinctEntries: n,
      cacheMissesPerInterval: round(counters.cacheMiss / intervals, 1),
      peakRssMiB: round(peakRssMiB, 1),
      requests: requestsObject(requests),
    };
  } finally {
    await run.cleanup();
  }
}
