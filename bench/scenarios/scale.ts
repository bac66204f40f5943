// `scale` (issue 18): one replica at N = 50,000 (or any N), every phase on one
// population. Running cold-sync, steady-state, restart, unrelated-secrets and
// change-latency one after the other would create and sync N ManagedSecrets
// five times (at 50,000 about 40 minutes of set-up on the 2-core machine), so
// this scenario creates them once and measures, in order: the cold sync; a
// window at rest (writes, requests); change latency with the cluster otherwise
// at rest; a restart (time to verify all N, writes); and the memory of the
// restarted operator before and after 20,000 unrelated Secrets appear in its
// namespace. Per-ManagedSecret memory and time are reported so that runs at
// 10,000 and 50,000 compare directly.
import { randomBytes } from 'node:crypto';
import {
  COUNTER_FAMILIES,
  OperatorProcess,
  apiserverRequests,
  diffCounters,
  diffRequests,
  operatorCounters,
  requestFigures,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import { timeoutFor, until } from '../lib/fixtures.js';
import { pool, range, round, seconds, sleep } from '../lib/util.js';
import { measureChangeLatency } from './change-latency.js';
import { coldSync } from './common.js';

/** How long the operator is watched with nothing changing (shorter for the CI smoke run's N = 50). */
const restWindowMs = (n: number) => (n >= 1_000 ? 30_000 : 5_000);

export async function scaleScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const setupStarted = Date.now();
  const run = await coldSync(ctx, 'scale', n);
  const figures: Figures = {};
  const perMs = (value: number) => round((value * 1000) / n, 3);
  let second: OperatorProcess | undefined;
  try {
    const cold = run.figures;
    figures.coldSyncSeconds = cold.allReadySeconds as number;
    figures.coldSyncMsPerManagedSecret = perMs(cold.allReadySeconds as number);
    figures.coldSyncWritesPerManagedSecret = cold.apiWritesPerManagedSecret as number;
    figures.coldSyncPeakRssMiB = cold.peakRssMiB as number;
    figures.coldSyncErrors = cold.syncErrors as number;
    figures.setupAndColdSyncSeconds = seconds(Date.now() - setupStarted);

    // At rest: nothing changes; the operator must write nothing.
    const restMs = restWindowMs(n);
    ctx.log(`scale: ${restMs / 1000} s at rest`);
    const restCounters = operatorCounters(await run.operator.metrics(COUNTER_FAMILIES));
    const restRequests = await apiserverRequests(ctx.cluster);
    await sleep(restMs);
    const rest = diffCounters(operatorCounters(await run.operator.metrics(COUNTER_FAMILIES)), restCounters);
    const restApi = requestFigures(diffRequests(await apiserverRequests(ctx.cluster), restRequests));
    figures.restOperatorWrites = rest.kubeWrites;
    figures.restApiRequestsPerMinute = round(((restApi.apiRequests as number) * 60_000) / restMs, 1);
    figures.restRssMiB = round(run.operator.rssMiB(), 1);

    ctx.log('scale: change latency');
    const changes = await measureChangeLatency(ctx, run, n);
    for (const [k, v] of Object.entries(changes)) figures[`change${k[0]?.toUpperCase()}${k.slice(1)}`] = v;
    figures.operatorPeakRssMiB = round((await run.operator.stop()).peakRssMiB, 1);
    figures.peakRssKiBPerManagedSecret = perMs((figures.operatorPeakRssMiB * 1024) / 1000);

    // Restart: a new process verifies all N; it must write nothing.
    const before = await apiserverRequests(ctx.cluster);
    ctx.log('scale: restart');
    second = await OperatorProcess.start(ctx, { namespaces: [run.namespace] });
    const op = second;
    const verifiedAt = await until(
      `${n} ManagedSecrets verified after the restart`,
      async () => {
        const c = operatorCounters(await op.metrics(COUNTER_FAMILIES));
        return c.verifiedFromStatus + c.syncsUnchanged + c.syncsSynced + c.syncsError >= n;
      },
      timeoutFor(n),
      100,
    );
    await sleep(2_000);
    const restart = operatorCounters(await op.metrics(COUNTER_FAMILIES));
    const restartApi = requestFigures(diffRequests(await apiserverRequests(ctx.cluster), before));
    figures.restartVerifiedSeconds = seconds(verifiedAt - op.startedAt);
    figures.restartVerifiedSecondsAfterStart = seconds(verifiedAt - op.readyAt);
    figures.restartMsPerManagedSecret = perMs(figures.restartVerifiedSeconds);
    figures.restartUnchanged = restart.syncsUnchanged;
    figures.restartVerifiedFromStatus = restart.verifiedFromStatus;
    figures.restartProviderReads = restart.providerReads;
    figures.restartSecretWrites = restartApi.apiSecretWrites as number;
    figures.restartStatusWrites = restartApi.apiStatusWrites as number;
    figures.restartOperatorWrites = restart.kubeWrites;
    figures.restartApiRequests = restartApi.apiRequests as number;
    figures.restartPeakRssMiB = round(op.peakRssMiB(), 1);

    // Unrelated Secrets in the same namespace: the operator's memory must not follow them.
    const unrelated = ctx.options.unrelated;
    const rssBefore = op.peakRssMiB();
    ctx.log(`scale: ${unrelated} unrelated Secrets of 1 KiB`);
    await pool(range(unrelated), ctx.options.createConcurrency, async (i) => {
      await ctx.kube.request('POST', `/api/v1/namespaces/${run.namespace}/secrets`, {
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: `unrelated-${i}`, labels: { app: 'someone-else' } },
          data: { blob: randomBytes(768).toString('base64') },
        },
      });
    });
    await sleep(5_000);
    const rssAfter = op.peakRssMiB();
    figures.unrelatedSecrets = unrelated;
    figures.unrelatedPeakRssMiBBefore = round(rssBefore, 1);
    figures.unrelatedPeakRssMiBAfter = round(rssAfter, 1);
    figures.unrelatedRssGrowthPercent = round(((rssAfter - rssBefore) / rssBefore) * 100, 1);
    figures.unrelatedOperatorWrites =
      operatorCounters(await op.metrics(COUNTER_FAMILIES)).kubeWrites - restart.kubeWrites;
    await op.stop();
    return figures;
  } finally {
    await second?.stop();
    await run.cleanup();
  }
}
