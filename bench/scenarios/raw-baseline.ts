import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { benchNamespace, ensureNamespace, type BenchContext, type Figures } from '../lib/context.js';
import { pool, range, round, seconds } from '../lib/util.js';

/**
 * 2. raw-baseline: the same N Secrets (3 keys each) created directly with
 * @kubernetes/client-node, at the operator's concurrency, against the same
 * control plane: the most a client can write. Cold-sync's ratio to it is our
 * "how close to the limit" figure (about 0.5 at best: a sync writes a Secret and a status).
 */
export async function rawBaselineScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const namespace = benchNamespace('raw-baseline');
  await ensureNamespace(ctx.kube, namespace);
  const api = ctx.cluster.kubeConfig().makeApiClient(CoreV1Api);
  const concurrency = ctx.options.operatorConcurrency;
  const bodies: V1Secret[] = range(n).map((i) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `ms-${i}`, labels: { 'bench.secretsync.io/raw': 'true' } },
    type: 'Opaque',
    data: Object.fromEntries(
      ['a', 'b', 'c'].map((k) => [k, Buffer.from(`${k}-${i}-${randomBytes(8).toString('hex')}`).toString('base64')]),
    ),
  }));
  ctx.log(`raw-baseline: creating ${n} Secrets with client-node, ${concurrency} in flight`);
  const started = Date.now();
  await pool(bodies, concurrency, async (body) => {
    await api.createNamespacedSecret({ namespace, body });
  });
  const elapsed = Date.now() - started;
  const perSecond = n / (elapsed / 1000);
  const figures: Figures = {
    concurrency,
    seconds: seconds(elapsed),
    secretsPerSecond: round(perSecond, 1),
  };
  const cold = ctx.results.get('cold-sync');
  if (cold && typeof cold.syncsPerSecond === 'number') {
    figures.coldSyncRatio = round(cold.syncsPerSecond / perSecond, 3);
    if (typeof cold.syncsPerSecondAfterStart === 'number')
      figures.coldSyncRatioAfterStart = round(cold.syncsPerSecondAfterStart / perSecond, 3);
  }
  return figures;
}
