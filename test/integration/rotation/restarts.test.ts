import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  OPERATOR_NAMESPACE,
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  spawnOperatorProcess,
  startOperator,
  waitForSecretData,
  type LocalStoreFixture,
  type OperatorProcess,
} from '../operator.js';

describe('rotation across crashes and downtime', function () {
  this.timeout(120_000);
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('rotcrash');
  const client = () => adminClient(sharedCluster());
  const children: ChildProcess[] = [];

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    fixture = await createLocalStore(client(), namespace);
    await createSecretStore(client(), namespace, 'local', fixture.dir);
  });
  after(() => fixture?.cleanup());
  afterEach(() => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  /** The operator as its own process, without leader election. */
  function operatorProcess(env: Record<string, string> = {}): OperatorProcess {
    const proc = spawnOperatorProcess(sharedCluster(), [namespace], ['--leader-elect', 'false'], env);
    children.push(proc.child);
    return proc;
  }

  const spec = (key: string, interval: string) => ({
    storeRef: { name: 'local' },
    refreshInterval: '1h',
    data: [{ secretKey: 'token', remoteRef: { key, property: 'token' } }],
    rotation: {
      interval,
      generator: { randomBytes: { length: 24 } },
      remoteRef: { key, property: 'token' },
      keepVersions: 10,
    },
  });

  it('killed between the store write and the Secret update, it finishes the same rotation on restart: one new version', async () => {
    await fixture.store.put('crash/one', { token: 'before' });
    const crashing = operatorProcess({ SECRETSYNC_TEST_CRASH_AFTER_ROTATION_WRITE: '1' });
    await createManagedSecret(client(), namespace, { metadata: { name: 'crash' }, spec: spec('crash/one', '1h') });
    await new Promise((resolve) => crashing.child.once('exit', resolve));
    expect(crashing.child.signalCode).to.equal('SIGKILL');
    const mid = await getManagedSecret(client(), namespace, 'crash');
    const token = mid.status?.rotationInProgress?.requestToken;
    expect(token, 'the in-progress record').to.be.a('string');
    expect((await fixture.store.history('crash/one')).map((v) => v.version)).to.deep.equal([1, 2]);
    const written = (await fixture.store.get('crash/one')).properties.token;

    const second = operatorProcess();
    const done = await waitFor(
      'the rotation to finish',
      async () => {
        const ms = await getManagedSecret(client(), namespace, 'crash');
        return ms.status?.lastRotationTime && !ms.status.rotationInProgress ? ms : undefined;
      },
      30_000,
      200,
    );
    expect(done.status?.rotationVersion).to.equal('2');
    await waitForSecretData(client(), namespace, 'crash', (d) => d.token === written);
    expect((await fixture.store.history('crash/one')).map((v) => v.version)).to.deep.equal([1, 2]);
    second.child.kill('SIGTERM');
    await new Promise((resolve) => second.child.once('exit', resolve));
  });

  it('down across three due times: exactly one rotation after the restart', async () => {
    await fixture.store.put('down/one', { token: 'before' });
    await createManagedSecret(client(), namespace, { metadata: { name: 'down' }, spec: spec('down/one', '4s') });
    const first = await startOperator(sharedCluster(), { namespaces: [namespace] });
    await waitFor(
      'the first rotation',
      async () => ((await getManagedSecret(client(), namespace, 'down')).status?.lastRotationTime ? true : undefined),
      15_000,
    );
    await first.stop();
    const versionsAtStop = (await fixture.store.history('down/one')).at(-1)?.version ?? 0;
    await sleep(13_000); // three due times pass
    expect((await fixture.store.history('down/one')).at(-1)?.version).to.equal(versionsAtStop);
    const second = await startOperator(sharedCluster(), { namespaces: [namespace] });
    try {
      await waitFor(
        'the catch-up rotation',
        async () =>
          (await fixture.store.history('down/one')).at(-1)?.version === versionsAtStop + 1 ? true : undefined,
        10_000,
        100,
      );
      await sleep(2_000);
      expect((await fixture.store.history('down/one')).at(-1)?.version).to.equal(versionsAtStop + 1);
      const ms = await getManagedSecret(client(), namespace, 'down');
      expect(new Date(ms.status?.nextRotationTime ?? 0).getTime()).to.be.greaterThan(Date.now());
    } finally {
      await second.stop();
    }
  });
});
