// Rollout restarts stay exactly-once across shard moves and restarts (issue 18),
// against the real control plane: the pending restart is durable in
// status.rolloutRestart, so the replica that takes a shard over (or an operator
// started again) carries out what the one before it scheduled; and a restart
// the one before already sent (a crash between the workload patch and clearing
// the intent) is not sent again; and a Secret written whose status record was
// lost (a shard lost or a crash between the Secret write and the status patch)
// still gets its restart from the next pass. Restarts are counted by the
// Deployment's metadata.generation: each pod-template change moves it by one.
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { API_VERSION, ANNOTATION_FORCE_SYNC, type ManagedSecret } from '../../../src/api/types.js';
import { versionTag } from '../../../src/controller/rollout.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  kubeWritesOf,
  getManagedSecret,
  refuseStatusWrites,
  spawnOperatorProcess,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type OperatorProcess,
} from '../operator.js';

interface Deployment {
  metadata: { generation: number };
  spec: { template: { metadata?: { annotations?: Record<string, string> } } };
}

describe('rollout restarts: exactly once across a shard takeover and an operator restart', function () {
  this.timeout(180_000);
  const namespace = uniqueName('rollout-once');
  // Leases of these replicas only (shard, member and leader Leases live in the operator namespace).
  const operatorNamespace = uniqueName('rollout-once-op');
  const client = () => adminClient(sharedCluster());
  let fixture: LocalStoreFixture;
  const children: ChildProcess[] = [];
  const deployPath = (name: string) => `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`;
  const msPath = (name: string) => `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/${name}`;
  const deploymentOf = (name: string) => client().get<Deployment>(deployPath(name));
  const annotationsOf = async (name: string) => (await deploymentOf(name)).spec.template.metadata?.annotations ?? {};

  async function deployment(name: string): Promise<void> {
    await client().request('POST', `/apis/apps/v1/namespaces/${namespace}/deployments`, {
      body: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { containers: [{ name: 'app', image: 'example.invalid/app:1' }] },
          },
        },
      },
    });
  }

  const restartingManagedSecret = (name: string, debounce: string) => ({
    metadata: { name },
    spec: {
      storeRef: { name: 'local' },
      refreshInterval: '1h',
      data: [{ secretKey: 'v', remoteRef: { key: name, property: 'v' } }],
      rolloutRestart: { targets: [{ kind: 'Deployment' as const, name }], debounce },
    },
  });

  /**
   * The store value changes and the ManagedSecret is asked to sync now. Waits for the Secret and, unless
   * `recorded` is false, for the status patch that follows it (it carries the restart intent).
   */
  async function change(name: string, value: string, recorded = true): Promise<void> {
    const before = (await getManagedSecret(client(), namespace, name)).status?.syncedVersion;
    await fixture.store.put(name, { v: value });
    await client().request('PATCH', msPath(name), {
      body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: `${value}-${Date.now()}` } } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(client(), namespace, name, (data) => data.v === value, 30_000);
    if (recorded)
      await waitFor(
        'the sync recorded',
        async () =>
          (await getManagedSecret(client(), namespace, name)).status?.syncedVersion !== before ? true : undefined,
        10_000,
        50,
      );
  }

  const replica = (identity: string) => {
    const proc = spawnOperatorProcess(
      sharedCluster(),
      [namespace],
      [
        '--operator-namespace',
        operatorNamespace,
        '--identity',
        identity,
        '--sharding',
        'true',
        // One shard: the replica whose identity sorts first holds it, the other stands by for it.
        '--shards',
        '1',
        '--lease-duration',
        '3s',
        '--renew-deadline',
        '2s',
        '--retry-period',
        '500ms',
      ],
    );
    children.push(proc.child);
    return proc;
  };
  const restartLines = (proc: OperatorProcess) => proc.lines.filter((l) => l.includes('"rollout restart"'));

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), operatorNamespace);
    fixture = await createLocalStore(client(), namespace);
    await createSecretStore(client(), namespace, 'local', fixture.dir);
  });

  after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fixture?.cleanup();
  });

  it('the holder is killed inside the debounce window: the replica that takes the shard over restarts the Deployment once, at notBefore', async () => {
    await deployment('web');
    await fixture.store.put('web', { v: 'a' });
    const a = replica('r18-a');
    await waitFor(
      'A to hold the shard',
      async () => (a.lines.some((l) => l.includes('"sharded"')) ? true : undefined),
      60_000,
    );
    const b = replica('r18-b');
    await createManagedSecret(client(), namespace, restartingManagedSecret('web', '20s'));
    await waitForReady(client(), namespace, 'web', 'True', 'Synced', 60_000);
    await waitFor('B to run', async () => (b.lines.some((l) => l.includes('"sharded"')) ? true : undefined), 60_000);
    const generation = (await deploymentOf('web')).metadata.generation;

    const changedAt = Date.now();
    await change('web', 'b');
    // The intent is in status, recorded with the sync: the version just synced, due one debounce later.
    const ms = await getManagedSecret(client(), namespace, 'web');
    const intent = ms.status?.rolloutRestart;
    expect(intent?.pendingVersion).to.equal(ms.status?.syncedVersion);
    const notBefore = Date.parse(intent?.notBefore ?? '');
    expect(notBefore - changedAt).to.be.within(20_000, 50_000);

    // Inside the window: A has scheduled the restart (in memory) and not sent it.
    expect(Date.now()).to.be.below(notBefore - 5_000);
    a.child.kill('SIGKILL');
    await waitFor(
      'B to restart the Deployment',
      async () => ((await deploymentOf('web')).metadata.generation > generation ? true : undefined),
      60_000,
      250,
    );
    // Not before its time: the window still holds for the new owner.
    expect(Date.now()).to.be.at.least(notBefore);
    expect((await annotationsOf('web'))['secretsync.io/restarted-for']).to.equal(
      `web=${versionTag(intent?.pendingVersion ?? '')}`,
    );
    await waitFor(
      'the intent cleared',
      async () => ((await getManagedSecret(client(), namespace, 'web')).status?.rolloutRestart ? undefined : true),
      10_000,
    );
    // B's later passes (its cache may still show the intent) do not restart it again.
    await client().request('PATCH', msPath('web'), {
      body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: `again-${Date.now()}` } } },
      contentType: 'application/merge-patch+json',
    });
    await sleep(3_000);
    expect((await deploymentOf('web')).metadata.generation).to.equal(generation + 1);
    expect(restartLines(a)).to.deep.equal([]);
    expect(restartLines(b)).to.have.length(1);
    b.child.kill('SIGTERM');
  });

  it('an operator stopped inside the window restarts the Deployment once when it is back; one already restarted for the version is skipped and its intent cleared', async () => {
    for (const name of ['pending', 'done']) {
      await deployment(name);
      await fixture.store.put(name, { v: '1' });
    }
    let operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    for (const name of ['pending', 'done']) {
      await createManagedSecret(client(), namespace, restartingManagedSecret(name, '8s'));
      await waitForReady(client(), namespace, name, 'True', 'Synced', 30_000);
    }
    const generations = {
      pending: (await deploymentOf('pending')).metadata.generation,
      done: (await deploymentOf('done')).metadata.generation,
    };
    const statusWritesBefore = await kubeWritesOf(operator.metrics, 'managedsecrets/status');
    await change('pending', '2');
    await change('done', '2');
    await sleep(500);
    // The intent rides in the sync's own status patch: one status write per change, as without restarts.
    expect(await kubeWritesOf(operator.metrics, 'managedsecrets/status')).to.equal(statusWritesBefore + 2);
    await operator.stop();
    const pendingIntent = (await getManagedSecret(client(), namespace, 'pending')).status?.rolloutRestart;
    const doneIntent = (await getManagedSecret(client(), namespace, 'done')).status?.rolloutRestart;
    expect(pendingIntent, 'pending intent').to.not.equal(undefined);
    expect(doneIntent, 'done intent').to.not.equal(undefined);
    // 'done' as a crash leaves it: the Deployment patched for this version, the intent not yet cleared.
    await client().request('PATCH', deployPath('done'), {
      body: {
        spec: {
          template: {
            metadata: {
              annotations: {
                'secretsync.io/restarted-at': new Date().toISOString(),
                'secretsync.io/restarted-for': `done=${versionTag(doneIntent?.pendingVersion ?? '')}`,
              },
            },
          },
        },
      },
      contentType: 'application/merge-patch+json',
    });
    generations.done += 1;

    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    try {
      await waitFor(
        'both intents cleared',
        async () => {
          const [p, d] = await Promise.all(['pending', 'done'].map((n) => getManagedSecret(client(), namespace, n)));
          return (p as ManagedSecret).status?.rolloutRestart || (d as ManagedSecret).status?.rolloutRestart
            ? undefined
            : true;
        },
        30_000,
      );
      expect(Date.now()).to.be.at.least(Date.parse(pendingIntent?.notBefore ?? ''));
      await sleep(2_000);
      expect((await deploymentOf('pending')).metadata.generation).to.equal(generations.pending + 1);
      expect((await annotationsOf('pending'))['secretsync.io/restarted-for']).to.equal(
        `pending=${versionTag(pendingIntent?.pendingVersion ?? '')}`,
      );
      expect((await deploymentOf('done')).metadata.generation).to.equal(generations.done);
      const results = (await operator.metrics.rolloutRestarts.get()).values;
      const count = (result: string) => results.find((v) => v.labels.result === result)?.value ?? 0;
      expect([count('restarted'), count('skipped')]).to.deep.equal([1, 1]);
      // Per restart: one workload patch and one status write (the clear); a skipped one costs the clear alone.
      expect(await kubeWritesOf(operator.metrics, 'deployments')).to.equal(1);
      expect(await kubeWritesOf(operator.metrics, 'managedsecrets/status')).to.equal(2);
    } finally {
      await operator.stop();
    }
  });

  it('a Secret written whose status record was lost (the status patch refused, the operator stopped) is restarted for once by the next pass', async () => {
    const name = 'unrecorded';
    await deployment(name);
    await fixture.store.put(name, { v: '1' });
    let operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    let lift: (() => Promise<void>) | undefined;
    try {
      await createManagedSecret(client(), namespace, restartingManagedSecret(name, '8s'));
      await waitForReady(client(), namespace, name, 'True', 'Synced', 30_000);
      const generation = (await deploymentOf(name)).metadata.generation;
      const recorded = (await getManagedSecret(client(), namespace, name)).status?.syncedVersion;
      expect(recorded).to.be.a('string');

      // The pass writes the Secret and cannot record it: what a shard lost or a crash between the two leaves.
      lift = await refuseStatusWrites(client(), namespace, name);
      await change(name, '2', false);
      await operator.stop();
      const unrecorded = (await getManagedSecret(client(), namespace, name)).status;
      expect(unrecorded?.syncedVersion).to.equal(recorded);
      expect(unrecorded?.rolloutRestart).to.equal(undefined);
      // Stopped inside the window: the restart it held in memory went with it.
      expect((await deploymentOf(name)).metadata.generation).to.equal(generation);
      await lift();
      lift = undefined;

      // The next pass has nothing to write (the Secret holds the new values) and still owes the restart.
      operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
      await waitFor(
        'the Deployment restarted',
        async () => ((await deploymentOf(name)).metadata.generation > generation ? true : undefined),
        60_000,
        250,
      );
      const synced = (await getManagedSecret(client(), namespace, name)).status?.syncedVersion;
      expect(synced).to.not.equal(recorded);
      expect((await annotationsOf(name))['secretsync.io/restarted-for']).to.equal(
        `${name}=${versionTag(synced ?? '')}`,
      );
      await waitFor(
        'the intent cleared',
        async () => ((await getManagedSecret(client(), namespace, name)).status?.rolloutRestart ? undefined : true),
        10_000,
      );
      // Later passes owe nothing more.
      await client().request('PATCH', msPath(name), {
        body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: `again-${Date.now()}` } } },
        contentType: 'application/merge-patch+json',
      });
      await sleep(2_000);
      expect((await deploymentOf(name)).metadata.generation).to.equal(generation + 1);
    } finally {
      await lift?.();
      await operator.stop();
    }
  });
});
