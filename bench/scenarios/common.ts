// The cold sync every local-store scenario starts from.
import {
  OperatorProcess,
  apiserverRequests,
  benchNamespace,
  diffRequests,
  operatorCounters,
  requestFigures,
  requestsObject,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import {
  Progress,
  createManagedSecrets,
  localSpec,
  localStoreNamespace,
  timeoutFor,
  type LocalFixture,
} from '../lib/fixtures.js';
import { round, seconds } from '../lib/util.js';

export interface ColdSync {
  namespace: string;
  fixture: LocalFixture;
  progress: Progress;
  operator: OperatorProcess;
  figures: Figures;
  requests: Record<string, number>;
  /** Stops the operator (if still running) and the watches; removes the store directory. */
  cleanup(): Promise<void>;
}

/**
 * N ManagedSecrets (local store, 3 keys each) exist; the operator starts;
 * timed until every ManagedSecret is Ready=True and every Secret exists.
 */
export async function coldSync(
  ctx: BenchContext,
  scenario: string,
  n: number,
  options: { refreshInterval?: string; namespace?: string } = {},
): Promise<ColdSync> {
  const namespace = options.namespace ?? benchNamespace(scenario);
  ctx.log(`${scenario}: creating ${n} store entries and ManagedSecrets in ${namespace}`);
  const fixture = await localStoreNamespace(ctx, namespace, n);
  await createManagedSecrets(ctx, namespace, n, (i) => localSpec(i, options.refreshInterval ?? '1h'));
  const progress = await new Progress(ctx.kube, namespace).start();
  const before = await apiserverRequests(ctx.cluster);
  ctx.log(`${scenario}: starting the operator`);
  const operator = await OperatorProcess.start(ctx, { namespaces: [namespace] });
  const allReady = await progress.waitAll(n, timeoutFor(n));
  const requests = diffRequests(await apiserverRequests(ctx.cluster), before);
  const counters = operatorCounters(await operator.metrics());
  const elapsed = allReady - operator.startedAt;
  const afterStart = allReady - operator.readyAt;
  const api = requestFigures(requests);
  const figures: Figures = {
    allReadySeconds: seconds(elapsed),
    operatorStartSeconds: seconds(operator.readyAt - operator.startedAt),
    syncsPerSecond: round(n / (elapsed / 1000), 1),
    syncsPerSecondAfterStart: round(n / (afterStart / 1000), 1),
    ...api,
    apiWritesPerManagedSecret: round((api.apiWrites as number) / n, 2),
    operatorSecretWrites: counters.secretWrites,
    operatorStatusWrites: counters.statusWrites,
    providerRequests: counters.providerRequests,
    syncErrors: counters.syncsError,
    peakRssMiB: round(operator.peakRssMiB(), 1),
  };
  ctx.log(`${scenario}: ${n} Ready in ${figures.allReadySeconds} s`);
  return {
    namespace,
    fixture,
    progress,
    operator,
    figures,
    requests: requestsObject(requests),
    async cleanup() {
      await operator.stop();
      await progress.stop();
      fixture.cleanup();
    },
  };
}
