// A Secret whose type changes (or that is immutable) cannot be updated in place:
// it is recreated. These tests show that a recreate never loses the Secret: a
// new object the API server would refuse leaves the old one in place, and a
// crash between the DELETE and the POST is repaired on restart.
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { API_VERSION } from '../../../src/api/types.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  OPERATOR_NAMESPACE,
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getSecret,
  spawnOperatorProcess,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type OperatorProcess,
  type RunningOperator,
} from '../operator.js';

describe('faults: recreating a Secret never loses it', function () {
  this.timeout(120_000);
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('recreate');
  const client = () => adminClient(sharedCluster());
  const children: ChildProcess[] = [];

  const retype = (name: string, type: string) =>
    client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/${name}`, {
      body: { spec: { target: { type } } },
      contentType: 'application/merge-patch+json',
    });

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('app/cfg', { password: 'pw-1' });
    await fixture.store.put('app/tls', { 'tls.crt': 'CERT', 'tls.key': 'KEY' });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
  });
  after(() => fixture?.cleanup());
  afterEach(() => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  describe('with the operator running', () => {
    let operator: RunningOperator;
    before(async () => {
      operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    });
    after(async () => operator?.stop());

    it('a type the API server refuses for these keys leaves the Secret as it was, with WriteFailed saying why', async () => {
      await createManagedSecret(client(), namespace, {
        metadata: { name: 'refused' },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1h',
          data: [{ secretKey: 'password', remoteRef: { key: 'app/cfg', property: 'password' } }],
        },
      });
      const before = await waitForSecretData(client(), namespace, 'refused', (d) => d.password === 'pw-1');
      // kubernetes.io/tls requires tls.crt and tls.key, which this ManagedSecret does not write.
      await retype('refused', 'kubernetes.io/tls');
      const ms = await waitForReady(client(), namespace, 'refused', 'False', 'WriteFailed');
      const message = ms.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
      expect(message).to.match(/tls\.crt/);
      expect(message).to.match(/left as it was/);
      // Still there: same object, same type, same data, for several more passes.
      for (let i = 0; i < 5; i++) {
        const now = await getSecret(client(), namespace, 'refused');
        expect(now?.metadata.uid, 'the same Secret object').to.equal(before.metadata.uid);
        expect(now?.type).to.equal('Opaque');
        expect(decoded(now)).to.deep.equal({ password: 'pw-1' });
        await sleep(500);
      }
    });

    it('a valid type change replaces the Secret: new type, same data source, a new object', async () => {
      await createManagedSecret(client(), namespace, {
        metadata: { name: 'retyped' },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1h',
          dataFrom: [{ extract: { key: 'app/tls' } }],
        },
      });
      const before = await waitForSecretData(client(), namespace, 'retyped', (d) => d['tls.crt'] === 'CERT');
      await retype('retyped', 'kubernetes.io/tls');
      const after = await waitFor(
        'the Secret recreated as kubernetes.io/tls',
        async () => {
          const s = await getSecret(client(), namespace, 'retyped');
          return s?.type === 'kubernetes.io/tls' ? s : undefined;
        },
        15_000,
        100,
      );
      expect(after.metadata.uid).to.not.equal(before.metadata.uid);
      expect(decoded(after)).to.deep.equal({ 'tls.crt': 'CERT', 'tls.key': 'KEY' });
      await waitForReady(client(), namespace, 'retyped', 'True', 'Synced');
    });
  });

  it('killed between the DELETE and the POST of a recreate, the operator puts the Secret back on restart', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'crash' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1h',
        dataFrom: [{ extract: { key: 'app/tls' } }],
      },
    });
    const first = spawnOperatorProcess(sharedCluster(), [namespace], ['--leader-elect', 'false']);
    children.push(first.child);
    await waitForSecretData(client(), namespace, 'crash', (d) => d['tls.crt'] === 'CERT');
    first.child.kill('SIGTERM');
    await exited(first);

    const crashing = spawnOperatorProcess(sharedCluster(), [namespace], ['--leader-elect', 'false'], {
      SECRETSYNC_TEST_CRASH_AFTER_SECRET_DELETE: '1',
    });
    children.push(crashing.child);
    await retype('crash', 'kubernetes.io/tls');
    await exited(crashing);
    expect(crashing.child.signalCode, 'the test hook killed it right after the DELETE').to.equal('SIGKILL');
    expect(await getSecret(client(), namespace, 'crash'), 'gone between DELETE and POST').to.equal(undefined);

    const started = Date.now();
    const second = spawnOperatorProcess(sharedCluster(), [namespace], ['--leader-elect', 'false']);
    children.push(second.child);
    const back = await waitForSecretData(client(), namespace, 'crash', (d) => d['tls.crt'] === 'CERT', 20_000);
    expect(back.type).to.equal('kubernetes.io/tls');
    expect(Date.now() - started, 'converged within 20 s of the restart').to.be.lessThan(20_000);
    second.child.kill('SIGTERM');
    await exited(second);
  });
});

function exited(proc: OperatorProcess): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.child.once('exit', () => resolve()));
}
