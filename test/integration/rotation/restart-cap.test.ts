import { expect } from 'chai';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  startOperator,
  waitForReady,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

interface Deployment {
  metadata: { name: string; generation?: number };
  spec: { template: { metadata?: { annotations?: Record<string, string> } } };
  status?: { observedGeneration?: number };
}

// No kubelet or Deployment controller runs here, so a restarted Deployment is never
// "observed" until the test says so: exactly what shows a restart holding its slot.
describe('the cluster-wide cap on restarts in flight (--max-concurrent-restarts)', function () {
  this.timeout(90_000);
  let operator: RunningOperator;
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('cap');
  const client = () => adminClient(sharedCluster());
  const path = (name: string) => `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`;
  const restartedAt = async (name: string) =>
    (await client().get<Deployment>(path(name))).spec.template.metadata?.annotations?.['secretsync.io/restarted-at'];

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    for (const name of ['cap-a', 'cap-b']) {
      await client().request('POST', `/apis/apps/v1/namespaces/${namespace}/deployments`, {
        body: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name },
          spec: {
            selector: { matchLabels: { app: name } },
            template: {
              metadata: { labels: { app: name } },
              spec: { containers: [{ name: 'app', image: 'example.invalid/app:1' }] },
            },
          },
        },
      });
    }
    operator = await startOperator(sharedCluster(), { namespaces: [namespace], maxConcurrentRestarts: 1 });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('queues the second restart until the first workload has observed its new template', async () => {
    await fixture.store.put('cap/v', { v: '1' });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'capped' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        data: [{ secretKey: 'v', remoteRef: { key: 'cap/v', property: 'v' } }],
        rolloutRestart: {
          targets: [
            { kind: 'Deployment', name: 'cap-a' },
            { kind: 'Deployment', name: 'cap-b' },
          ],
          debounce: '200ms',
        },
      },
    });
    await waitForReady(client(), namespace, 'capped', 'True');
    await fixture.store.put('cap/v', { v: '2' });

    const first = await waitFor(
      'one restart',
      async () => {
        const [a, b] = [await restartedAt('cap-a'), await restartedAt('cap-b')];
        return a || b ? (a ? 'cap-a' : 'cap-b') : undefined;
      },
      15_000,
      100,
    );
    const second = first === 'cap-a' ? 'cap-b' : 'cap-a';
    await sleep(3_000);
    // One slot, held by the first restart: the second waits.
    expect(await restartedAt(second)).to.equal(undefined);

    const d = await client().get<Deployment & Record<string, unknown>>(path(first));
    await client().request('PUT', `${path(first)}/status`, {
      body: { ...d, status: { ...(d.status ?? {}), observedGeneration: d.metadata.generation } },
    });
    await waitFor('the queued restart', async () => restartedAt(second), 10_000, 100);
  });
});
