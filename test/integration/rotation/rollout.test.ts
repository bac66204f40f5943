import { expect } from 'chai';
import { API_VERSION } from '../../../src/api/types.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  listEvents,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

interface Deployment {
  metadata: { name: string; managedFields?: { manager: string }[] };
  spec: { template: { metadata?: { annotations?: Record<string, string> } } };
}

describe('rollout restarts', function () {
  this.timeout(120_000);
  let operator: RunningOperator;
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('rollout');
  const client = () => adminClient(sharedCluster());
  const deployPath = (name = '') => `/apis/apps/v1/namespaces/${namespace}/deployments${name ? `/${name}` : ''}`;
  const restartedAt = async (name: string) =>
    (await client().get<Deployment>(deployPath(name))).spec.template.metadata?.annotations?.[
      'secretsync.io/restarted-at'
    ];

  async function deployment(name: string, podSpec: Record<string, unknown>): Promise<void> {
    await client().request('POST', deployPath(), {
      body: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, labels: { app: name } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { containers: [{ name: 'app', image: 'example.invalid/app:1' }], ...podSpec },
          },
        },
      },
    });
  }

  const ms = (name: string, key: string, rolloutRestart: Record<string, unknown>) => ({
    metadata: { name },
    spec: {
      storeRef: { name: 'local' },
      refreshInterval: '1s',
      data: [{ secretKey: 'v', remoteRef: { key, property: 'v' } }],
      rolloutRestart,
    },
  });

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });
  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('a listed Deployment gets its template annotation once per data change, not on a no-op refresh', async () => {
    await deployment('listed', {});
    await fixture.store.put('r/listed', { v: 'a' });
    await createManagedSecret(
      client(),
      namespace,
      ms('listed', 'r/listed', { targets: [{ kind: 'Deployment', name: 'listed' }], debounce: '500ms' }),
    );
    await waitForReady(client(), namespace, 'listed', 'True');
    await sleep(3_000); // refreshes with no change
    expect(await restartedAt('listed')).to.equal(undefined);
    await fixture.store.put('r/listed', { v: 'b' });
    const first = await waitFor('a restart', async () => restartedAt('listed'), 10_000);
    await sleep(3_000);
    expect(await restartedAt('listed')).to.equal(first);
    await fixture.store.put('r/listed', { v: 'c' });
    await waitFor('a second restart', async () => ((await restartedAt('listed')) !== first ? true : undefined), 10_000);
    const d = await client().get<Deployment>(deployPath('listed'));
    expect(d.metadata.managedFields?.map((f) => f.manager)).to.include('secretsync');
  });

  it('three Secrets used by one Deployment changing within the debounce window cause one restart', async () => {
    await deployment('shared', {});
    for (const n of ['s1', 's2', 's3']) {
      await fixture.store.put(`r/${n}`, { v: '1' });
      await createManagedSecret(
        client(),
        namespace,
        ms(n, `r/${n}`, {
          targets: [{ kind: 'Deployment', selector: { matchLabels: { app: 'shared' } } }],
          debounce: '4s',
        }),
      );
      await waitForReady(client(), namespace, n, 'True');
    }
    const before = await restartedAt('shared');
    const restartsBefore = await restarts(operator);
    for (const n of ['s1', 's2', 's3']) await fixture.store.put(`r/${n}`, { v: '2' });
    for (const n of ['s1', 's2', 's3']) await waitForSecretData(client(), namespace, n, (d) => d.v === '2');
    await waitFor('the restart', async () => ((await restartedAt('shared')) !== before ? true : undefined), 15_000);
    await sleep(5_000);
    expect((await restarts(operator)) - restartsBefore).to.equal(1);
  });

  it('auto finds a Deployment that mounts the Secret and one that uses it in envFrom, and leaves an unrelated one alone', async () => {
    await deployment('by-volume', { volumes: [{ name: 's', secret: { secretName: 'auto' } }] });
    await deployment('by-envfrom', {
      containers: [{ name: 'app', image: 'example.invalid/app:1', envFrom: [{ secretRef: { name: 'auto' } }] }],
    });
    await deployment('unrelated', { volumes: [{ name: 's', secret: { secretName: 'something-else' } }] });
    await fixture.store.put('r/auto', { v: '1' });
    await createManagedSecret(client(), namespace, ms('auto', 'r/auto', { auto: true, debounce: '500ms' }));
    await waitForReady(client(), namespace, 'auto', 'True');
    await fixture.store.put('r/auto', { v: '2' });
    await waitFor(
      'both restarts',
      async () => ((await restartedAt('by-volume')) && (await restartedAt('by-envfrom')) ? true : undefined),
      10_000,
    );
    await sleep(1_500);
    expect(await restartedAt('unrelated')).to.equal(undefined);
  });

  it('a flapping source stops triggering restarts and says so in status and an Event', async () => {
    await deployment('flappy', {});
    await fixture.store.put('r/flap', { v: '0' });
    await createManagedSecret(
      client(),
      namespace,
      ms('flap', 'r/flap', {
        targets: [{ kind: 'Deployment', name: 'flappy' }],
        debounce: '200ms',
        maxChangesPerHour: 2,
      }),
    );
    await waitForReady(client(), namespace, 'flap', 'True');
    for (let i = 1; i <= 4; i++) {
      await fixture.store.put('r/flap', { v: String(i) });
      await waitForSecretData(client(), namespace, 'flap', (d) => d.v === String(i));
      await sleep(600);
    }
    const condition = await waitFor(
      'RolloutRestart=False',
      async () => {
        const m = await client().get<{ status?: { conditions?: { type: string; status: string; reason: string }[] } }>(
          `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/flap`,
        );
        return m.status?.conditions?.find((c) => c.type === 'RolloutRestart' && c.status === 'False');
      },
      10_000,
    );
    expect(condition.reason).to.equal('Flapping');
    const stamp = await restartedAt('flappy');
    await fixture.store.put('r/flap', { v: '5' });
    await waitForSecretData(client(), namespace, 'flap', (d) => d.v === '5');
    await sleep(1_000);
    expect(await restartedAt('flappy')).to.equal(stamp);
    expect((await listEvents(client(), namespace)).some((e) => e.reason === 'Flapping')).to.equal(true);
  });
});

async function restarts(operator: RunningOperator): Promise<number> {
  const m = await operator.metrics.rolloutRestarts.get();
  return m.values.filter((v) => v.labels.result === 'restarted').reduce((n, v) => n + v.value, 0);
}
