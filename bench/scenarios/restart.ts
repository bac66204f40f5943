import {
  COUNTER_FAMILIES,
  OperatorProcess,
  apiserverRequests,
  diffRequests,
  operatorCounters,
  requestFigures,
  requestsObject,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import { timeoutFor, until } from '../lib/fixtures.js';
import { round, seconds, sleep } from '../lib/util.js';
import { coldSync } from './common.js';

/**
 * 4. restart: with N in sync, a new operator process starts: time until it
 * has verified every ManagedSecret (a sync that found nothing to change), and
 * the writes it made (target 0).
 */
export async function restartScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const run = await coldSync(ctx, 'restart', n);
  let second: OperatorProcess | undefined;
  try {
    await run.operator.stop();
    const before = await apiserverRequests(ctx.cluster);
    ctx.log('restart: starting a second operator');
    second = await OperatorProcess.start(ctx, { namespaces: [run.namespace] });
    const op = second;
    let verified = 0;
    const at = await until(
      `${n} ManagedSecrets verified after the restart`,
      async () => {
        const c = operatorCounters(await op.metrics(COUNTER_FAMILIES));
        verified = c.verifiedFromStatus + c.syncsUnchanged + c.syncsSynced + c.syncsError;
        return verified >= n;
      },
      timeoutFor(n),
      100,
    );
    // Late writes (a status patch after the count) would show here.
    await sleep(2_000);
    const counters = operatorCounters(await op.metrics());
    const requests = diffRequests(await apiserverRequests(ctx.cluster), before);
    const api = requestFigures(requests);
    const { peakRssMiB } = await op.stop();
    return {
      verifiedSeconds: seconds(at - op.startedAt),
      verifiedSecondsAfterStart: seconds(at - op.readyAt),
      verified: counters.verifiedFromStatus + counters.syncsUnchanged + counters.syncsSynced,
      verifiedFromStatus: counters.verifiedFromStatus,
      unchanged: counters.syncsUnchanged,
      providerReads: counters.providerReads,
      secretWrites: api.apiSecretWrites as number,
      statusWrites: api.apiStatusWrites as number,
      apiWrites: api.apiWrites as number,
      operatorKubeWrites: counters.kubeWrites,
      apiRequests: api.apiRequests as number,
      providerRequests: counters.providerRequests,
      peakRssMiB: round(peakRssMiB, 1),
      requests: requestsObject(requests),
    };
  } finally {
    await second?.stop();
    await run.cleanup();
  }
}
