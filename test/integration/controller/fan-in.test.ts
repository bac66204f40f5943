import { expect } from 'chai';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import { waitFor } from '../../../tools/testenv/index.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  startOperator,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

describe('fan-in: many ManagedSecrets, few remote keys', function () {
  this.timeout(120_000);
  let operator: RunningOperator | undefined;
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('fanin');
  const client = () => adminClient(sharedCluster());
  const KEYS = 10;
  const MANAGED = 200;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    for (let k = 0; k < KEYS; k++) await fixture.store.put(`shared/key-${k}`, { value: `v${k}` });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    for (let i = 0; i < MANAGED; i++) {
      await createManagedSecret(client(), namespace, {
        metadata: { name: `consumer-${i}` },
        spec: {
          storeRef: { name: 'local' },
          data: [{ secretKey: 'value', remoteRef: { key: `shared/key-${i % KEYS}`, property: 'value' } }],
        },
      });
    }
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it(`${MANAGED} ManagedSecrets over ${KEYS} remote keys cost about ${KEYS} backend reads`, async () => {
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    await waitFor(
      'every ManagedSecret to be Ready',
      async () => {
        const list = await client().list<{ status?: { conditions?: { type: string; status: string }[] } }>(
          `/apis/secretsync.io/v1alpha1/namespaces/${namespace}/managedsecrets`,
        );
        return list.items.filter((m) => m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          .length === MANAGED
          ? true
          : undefined;
      },
      60_000,
      500,
    );
    const reads = (await operator.metrics.providerRequests.get()).values
      .filter((v) => v.labels.operation === 'getValue')
      .reduce((n, v) => n + v.value, 0);
    const cache = Object.fromEntries(
      (await operator.metrics.fetchCache.get()).values.map((v) => [v.labels.result, v.value]),
    );
    expect(reads).to.be.at.least(KEYS);
    expect(reads).to.be.at.most(KEYS + 2);
    expect((cache.hit ?? 0) + (cache.shared ?? 0)).to.be.at.least(MANAGED - KEYS - 2);
    expect((await getManagedSecret(client(), namespace, 'consumer-7')).status?.secretName).to.equal('consumer-7');
  });
});
