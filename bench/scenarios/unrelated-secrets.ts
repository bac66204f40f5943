import { randomBytes } from 'node:crypto';
import { benchNamespace, ensureNamespace, type BenchContext, type Figures } from '../lib/context.js';
import { pool, range, round } from '../lib/util.js';
import { coldSync } from './common.js';

/**
 * 5. unrelated-secrets: peak RSS with N managed, then with N managed plus
 * 20,000 Secrets of 1 KiB that are not ours in the same namespace. Memory must
 * follow what we manage, not the cluster's size.
 */
export async function unrelatedSecretsScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const unrelated = ctx.options.unrelated;
  const alone = await coldSync(ctx, 'unrelated-base', n);
  let baseRss: number;
  try {
    baseRss = (await alone.operator.stop()).peakRssMiB;
  } finally {
    await alone.cleanup();
  }
  const namespace = benchNamespace('unrelated');
  await ensureNamespace(ctx.kube, namespace);
  ctx.log(`unrelated-secrets: creating ${unrelated} unrelated Secrets of 1 KiB`);
  await pool(range(unrelated), ctx.options.createConcurrency, async (i) => {
    await ctx.kube.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `unrelated-${i}`, labels: { app: 'someone-else' } },
        data: { blob: randomBytes(768).toString('base64') },
      },
    });
  });
  const crowded = await coldSync(ctx, 'unrelated-secrets', n, { namespace });
  try {
    const withRss = (await crowded.operator.stop()).peakRssMiB;
    return {
      unrelatedSecrets: unrelated,
      peakRssMiBWithout: round(baseRss, 1),
      peakRssMiBWith: round(withRss, 1),
      rssGrowthPercent: round(((withRss - baseRss) / baseRss) * 100, 1),
      coldSyncSecondsWithout: alone.figures.allReadySeconds as number,
      coldSyncSecondsWith: crowded.figures.allReadySeconds as number,
    };
  } finally {
    await crowded.cleanup();
  }
}
