import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { waitFor } from '../../../tools/testenv/index.js';
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
  getSecret,
  spawnOperatorProcess,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
} from '../operator.js';

describe('restarts and high availability', function () {
  this.timeout(120_000);
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('ha');
  const client = () => adminClient(sharedCluster());

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('shared', { a: '1', b: '2' });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
  });

  after(() => fixture?.cleanup());

  // Hooks run even when a test times out, unlike a finally block in the test.
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('a restart with everything in sync verifies every ManagedSecret and writes nothing', async () => {
    const names = ['r1', 'r2', 'r3', 'r4', 'r5'];
    const first = await startOperator(sharedCluster(), { namespaces: [namespace] });
    try {
      for (const name of names) {
        await createManagedSecret(client(), namespace, {
          metadata: { name },
          spec: { storeRef: { name: 'local' }, refreshInterval: '1h', dataFrom: [{ extract: { key: 'shared' } }] },
        });
      }
      for (const name of names) await waitForReady(client(), namespace, name, 'True', 'Synced');
    } finally {
      await first.stop();
    }
    const versions = async () =>
      Promise.all(
        names.map(async (n) => [
          (await getSecret(client(), namespace, n))?.metadata.resourceVersion,
          (await getManagedSecret(client(), namespace, n)).metadata.resourceVersion,
        ]),
      );
    const before = await versions();

    const second = await startOperator(sharedCluster(), { namespaces: [namespace] });
    try {
      await waitFor(
        'the restarted operator to verify all five',
        async () => {
          // Status vouches for all five (Ready, this generation, refreshed an hour from now): none is read again.
          const verified = (await second.metrics.verifiedFromStatus.get()).values[0]?.value ?? 0;
          return verified >= names.length ? true : undefined;
        },
        15_000,
      );
      const writes = await second.metrics.kubeWrites.get();
      expect(writes.values.reduce((n, v) => n + v.value, 0)).to.equal(0);
      expect(await versions()).to.deep.equal(before);
    } finally {
      await second.stop();
    }
  });

  it('with two operator processes only the leader reconciles, and the standby takes over when it is killed', async () => {
    const lease = uniqueName('lease');
    const processes: { child: ChildProcess; identity: string; lines: string[] }[] = [];
    const startProcess = (identity: string) => {
      const proc = spawnOperatorProcess(sharedCluster(), [namespace], ['--lease-name', lease, '--identity', identity]);
      children.push(proc.child);
      const entry = { ...proc, identity };
      processes.push(entry);
      return entry;
    };
    const holder = async () => {
      try {
        const l = await client().get<{ spec: { holderIdentity?: string } }>(
          `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/${lease}`,
        );
        return l.spec.holderIdentity;
      } catch {
        return undefined;
      }
    };
    {
      const a = startProcess('replica-a');
      const b = startProcess('replica-b');
      const leaderId = await waitFor('a leader', async () => (await holder()) || undefined, 30_000);
      const [leader, standby] = leaderId === a.identity ? [a, b] : [b, a];
      await createManagedSecret(client(), namespace, {
        metadata: { name: 'ha-one' },
        spec: { storeRef: { name: 'local' }, dataFrom: [{ extract: { key: 'shared' } }] },
      });
      await waitForSecretData(client(), namespace, 'ha-one', (d) => d.a === '1', 20_000);
      const synced = (e: { lines: string[] }) => e.lines.filter((l) => l.includes('"message":"synced"')).length;
      await waitFor('the leader to log its sync', async () => (synced(leader) > 0 ? true : undefined), 5_000);
      expect(synced(standby)).to.equal(0);
      expect(standby.lines.some((l) => l.includes('became leader'))).to.equal(false);

      leader.child.kill('SIGKILL');
      const killedAt = Date.now();
      await waitFor(
        'the standby to take the Lease',
        async () => ((await holder()) === standby.identity ? true : undefined),
        30_000,
        250,
      );
      const takeoverMs = Date.now() - killedAt;
      expect(takeoverMs).to.be.lessThan(25_000);
      await createManagedSecret(client(), namespace, {
        metadata: { name: 'ha-two' },
        spec: { storeRef: { name: 'local' }, dataFrom: [{ extract: { key: 'shared' } }] },
      });
      await waitForSecretData(client(), namespace, 'ha-two', (d) => d.b === '2', 15_000);
      // Logs come through a pipe and may trail the Secret by a moment.
      await waitFor('the new leader to log its sync', async () => (synced(standby) > 0 ? true : undefined), 5_000);

      // SIGTERM drains and hands the Lease back at once.
      standby.child.kill('SIGTERM');
      await new Promise((resolve) => standby.child.once('exit', resolve));
      expect(standby.child.exitCode).to.equal(0);
      expect(await holder()).to.equal('');
    }
  });
});
