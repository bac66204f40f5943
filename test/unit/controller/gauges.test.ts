// The cache-derived gauges, in particular the not-Ready count by reason that
// the dashboard's "not Ready by reason" panel reads: reasons are counted,
// cleared when no ManagedSecret has them any more, and kept a bounded set.
import { expect } from 'chai';
import type { ManagedSecret } from '../../../src/api/types.js';
import type { ClusterCache } from '../../../src/controller/caches.js';
import { updateGauges } from '../../../src/controller/gauges.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { turnsDuring } from '../helpers/index.js';

function managedSecret(name: string, ready?: { status: string; reason: string }): ManagedSecret {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'ManagedSecret',
    metadata: { name, namespace: 'team-a' },
    spec: { storeRef: { name: 'local' }, data: [] },
    ...(ready
      ? {
          status: {
            conditions: [{ type: 'Ready', ...ready, message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }],
          },
        }
      : {}),
  } as unknown as ManagedSecret;
}

/** Only what updateGauges reads from the caches. */
function caches(list: ManagedSecret[]): ClusterCache {
  return {
    managedSecrets: { list: () => list },
    secretStores: { list: () => [] },
    clusterStores: { list: () => [] },
  } as unknown as ClusterCache;
}

async function notReady(metrics: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.managedSecretsNotReady.get()).values) out[String(v.labels.reason)] = v.value;
  return out;
}

function update(metrics: Metrics, list: ManagedSecret[]): Promise<void> {
  return updateGauges({ caches: caches(list), metrics, checks: () => [], queueDepth: () => 0 });
}

describe('updateGauges', () => {
  it('counts ManagedSecrets that are not Ready by the reason of their Ready condition', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    await update(metrics, [
      managedSecret('a', { status: 'True', reason: 'Synced' }),
      managedSecret('b', { status: 'False', reason: 'ProviderError' }),
      managedSecret('c', { status: 'False', reason: 'ProviderError' }),
      managedSecret('d', { status: 'Unknown', reason: 'Syncing' }),
      managedSecret('e'),
    ]);
    expect(await notReady(metrics)).to.deep.equal({ ProviderError: 2, Syncing: 1, NoCondition: 1 });
    const ready = (await metrics.managedSecrets.get()).values.find((v) => v.labels.ready === 'True');
    expect(ready?.value).to.equal(1);
  });

  it('drops a reason no ManagedSecret has any more', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    await update(metrics, [managedSecret('b', { status: 'False', reason: 'ProviderError' })]);
    await update(metrics, [managedSecret('b', { status: 'True', reason: 'Synced' })]);
    expect(await notReady(metrics)).to.deep.equal({});
  });

  it('keeps the reason label a bounded set: malformed reasons, and new ones once 32 labels are in use, count as Other', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const list = [
      managedSecret('bad', { status: 'False', reason: 'not a reason {}' }),
      ...Array.from({ length: 40 }, (_, i) => managedSecret(`m${i}`, { status: 'False', reason: `Reason${i}` })),
    ];
    await update(metrics, list);
    const counts = await notReady(metrics);
    // Other (the malformed one) and Reason0..Reason30 fill the 32; Reason31..Reason39 join Other.
    expect(Object.keys(counts)).to.have.length(32);
    expect(counts.Reason30).to.equal(1);
    expect(counts.Other).to.equal(1 + 9);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).to.equal(41);
  });
});

describe('updateGauges over many ManagedSecrets', () => {
  it('lets the event loop turn between slices, and counts every one', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const list = Array.from({ length: 10_000 }, (_, i) => managedSecret(`m${i}`, { status: 'True', reason: 'Synced' }));
    const checks = Array.from({ length: 10_000 }, () => ({ lastCheck: Date.now() - 3_000, intervalMs: 1_000 }));
    const { turns } = await turnsDuring(() =>
      updateGauges({ caches: caches(list), metrics, checks: () => checks, queueDepth: () => 0 }, Date.now(), 1_000),
    );
    // 20,000 records in slices of 1,000: the loop turned between them (in one piece before: 0 or 1 turn).
    expect(turns).to.be.at.least(15);
    const ready = (await metrics.managedSecrets.get()).values.find((v) => v.labels.ready === 'True');
    expect(ready?.value).to.equal(10_000);
    expect((await metrics.overdue.get()).values[0]?.value).to.equal(10_000);
  });
});
