// `secretsync run --sharding --shards-owned` as an operator would start it by
// hand: two processes with leader election on (for the store checks), each
// holding one of two shards, sync the ManagedSecrets of both shards between
// them, each writing only its own shard's Secrets (its log says which).
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { LABEL_SHARD, shardOf } from '../../../src/sharding/ownership.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  OPERATOR_NAMESPACE,
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getSecret,
  spawnOperatorProcess,
  waitForReady,
  type LocalStoreFixture,
} from '../operator.js';

describe('secretsync run --sharding --shards-owned (two processes)', function () {
  this.timeout(120_000);
  const namespace = uniqueName('shard-cli');
  const client = () => adminClient(sharedCluster());
  let fixture: LocalStoreFixture;
  const children: ChildProcess[] = [];

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('shared', { a: '1' });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
  });

  after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fixture?.cleanup();
  });

  it('syncs every shard once, each process its own', async () => {
    const lease = uniqueName('lease');
    const procs = ['0', '1'].map((owned) => {
      const proc = spawnOperatorProcess(
        sharedCluster(),
        [namespace],
        ['--lease-name', lease, '--identity', `shard-${owned}`, '--sharding', 'true', '--shards', '2'],
        { SECRETSYNC_SHARDS_OWNED: owned, SECRETSYNC_LOG_LEVEL: 'debug' },
      );
      children.push(proc.child);
      return proc;
    });
    const names: string[] = [];
    for (let i = 0; names.filter((n) => shardOf(namespace, n, 2) === 0).length < 2 || names.length < 4; i++) {
      const name = `cli-${i}`;
      if (names.filter((n) => shardOf(namespace, n, 2) === shardOf(namespace, name, 2)).length < 2) names.push(name);
    }
    for (const name of names)
      await createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: { storeRef: { name: 'local' }, refreshInterval: '1h', dataFrom: [{ extract: { key: 'shared' } }] },
      });
    for (const name of names) await waitForReady(client(), namespace, name, 'True', 'Synced', 60_000);
    for (const name of names) {
      const shard = shardOf(namespace, name, 2);
      expect((await getSecret(client(), namespace, name))?.metadata.labels?.[LABEL_SHARD]).to.equal(String(shard));
      // The process holding the shard wrote it; the other never did.
      const wrote = (owned: number) =>
        procs[owned]?.lines.some((l) => l.includes('"synced"') && l.includes(`${namespace}/${name}`)) ?? false;
      expect([wrote(shard), wrote(1 - shard)], name).to.deep.equal([true, false]);
    }
  });
});
