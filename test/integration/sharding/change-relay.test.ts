// The change relay against the real control plane: two sharded operators in
// one process (StaticShardOwnership, half of the shards each). A change
// notification delivered to replica A (as the webhook delivers it) for an
// entry read by a ManagedSecret in a shard B holds must reach B's Secret at
// once, not at the next refresh (1 h here), and on B only the ManagedSecrets
// that read that entry sync. The relay ConfigMap holds no entry name.
import { expect } from 'chai';
import type { KubeObject } from '../../../src/kube/client.js';
import { queueKey } from '../../../src/controller/keys.js';
import type { Metrics } from '../../../src/observability/metrics.js';
import { CHANGE_RELAY_NAME, parseRelayEntries, RELAY_DATA_KEY } from '../../../src/sharding/change-relay.js';
import { shardOf } from '../../../src/sharding/ownership.js';
import { StaticShardOwnership } from '../../../src/sharding/static.js';
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
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

const SHARDS = 4;

async function relayed(metrics: Metrics, what: 'published' | 'applied'): Promise<number> {
  const values = (await metrics.changeRelayEntries.get()).values;
  return values.filter((v) => v.labels.what === what).reduce((n, v) => n + v.value, 0);
}

async function notified(metrics: Metrics, source: string, what: 'notifications' | 'managed_secrets'): Promise<number> {
  const values = (await metrics.changeNotifications.get()).values;
  return values.filter((v) => v.labels.source === source && v.labels.what === what).reduce((n, v) => n + v.value, 0);
}

describe('sharded change relay: a notification received by one replica reaches the shard held by another', function () {
  this.timeout(120_000);
  const namespace = uniqueName('shard-relay');
  const client = () => adminClient(sharedCluster());
  let fixture: LocalStoreFixture;
  let a: RunningOperator | undefined;
  let b: RunningOperator | undefined;
  const heldByA = [0, 1];
  const shardOfName = (name: string) => shardOf(namespace, name, SHARDS);
  // The first name of a shard held by B / by A, whatever the namespace's random suffix makes of the hash.
  const pick = (prefix: string, onA: boolean) => {
    for (let i = 0; ; i++) {
      const name = `${prefix}-${i}`;
      if (heldByA.includes(shardOfName(name)) === onA) return name;
    }
  };
  const onB = pick('changed-b', false);
  const otherOnB = pick('other-b', false);
  const onA = pick('changed-a', true);
  const storeKey = () => queueKey.secretStore(namespace, 'local');

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('db-password', { v: 'one' });
    await fixture.store.put('api-token', { v: 'one' });
    // No `events` block: no directory watch on either replica; only the notification says what changed.
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    a = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      identity: 'relay-a',
      sharding: { ownership: new StaticShardOwnership(SHARDS, heldByA) },
    });
    b = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      identity: 'relay-b',
      sharding: { ownership: new StaticShardOwnership(SHARDS, [2, 3]) },
    });
    const reads = (name: string, key: string) =>
      createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: { storeRef: { name: 'local' }, refreshInterval: '1h', dataFrom: [{ extract: { key } }] },
      });
    await reads(onB, 'db-password');
    await reads(otherOnB, 'api-token');
    await reads(onA, 'db-password');
    for (const name of [onB, otherOnB, onA]) await waitForReady(client(), namespace, name, 'True', 'Synced', 30_000);
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    fixture?.cleanup();
  });

  it('syncs the ManagedSecret of a shard held by B within a second or two of a notification delivered to A', async () => {
    const relayedBefore = await notified(b!.metrics, 'relay', 'managed_secrets');
    // Both entries change; only one is notified. The other must wait for its refresh (1 h): it proves B synced no more.
    await fixture.store.put('db-password', { v: 'two' });
    await fixture.store.put('api-token', { v: 'two' });
    const started = Date.now();
    expect(a!.manager.notifyChanged(storeKey(), ['db-password'], 'webhook')).to.equal(1);
    await waitForSecretData(client(), namespace, onB, (d) => d.v === 'two', 5_000);
    const latencyMs = Date.now() - started;
    expect(latencyMs, 'notification on A to Secret written by B').to.be.below(2_000);
    await waitForSecretData(client(), namespace, onA, (d) => d.v === 'two', 5_000);
    // B applied one relayed entry and sent exactly one ManagedSecret to sync.
    expect((await notified(b!.metrics, 'relay', 'managed_secrets')) - relayedBefore).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(decoded(await getSecret(client(), namespace, otherOnB))).to.deep.equal({ v: 'one' });
    // A published one entry and does not apply it back to itself.
    expect(await relayed(a!.metrics, 'published')).to.equal(1);
    expect(await relayed(a!.metrics, 'applied')).to.equal(0);
  });

  it('a changed entry no ManagedSecret of B reads by name reaches those of B that list it with find', async () => {
    const finder = pick('finder-b', false);
    await fixture.store.put('feed/one', { value: '1' });
    await createManagedSecret(client(), namespace, {
      metadata: { name: finder },
      spec: { storeRef: { name: 'local' }, refreshInterval: '1h', dataFrom: [{ find: { prefix: 'feed/' } }] },
    });
    await waitForSecretData(client(), namespace, finder, (d) => d.one === '1', 30_000);
    await fixture.store.put('feed/two', { value: '2' });
    const started = Date.now();
    // A knows no reader of feed/two; B matches its hash to no key it reads by name: its finds look again.
    expect(a!.manager.notifyChanged(storeKey(), ['feed/two'], 'webhook')).to.equal(0);
    await waitForSecretData(client(), namespace, finder, (d) => d.one === '1' && d.two === '2', 5_000);
    expect(Date.now() - started).to.be.below(2_000);
  });

  it('keeps no entry name in the relay ConfigMap: the store, a hash per entry, the publisher and a time', async () => {
    const cm = await client().get<KubeObject & { data?: Record<string, string> }>(
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/configmaps/${CHANGE_RELAY_NAME}`,
    );
    const text = cm.data?.[RELAY_DATA_KEY] ?? '';
    expect(text).to.not.include('db-password');
    const ours = parseRelayEntries(text).filter((e) => e.store === storeKey());
    expect(ours).to.have.length.greaterThan(0);
    const last = ours[ours.length - 1]!;
    expect(last.from).to.match(/^relay-a\./);
    expect(last.keys).to.have.length(1);
    expect(text).to.not.include('feed/two');
    expect(last.keys![0]).to.match(/^[A-Za-z0-9_-]{22}$/);
    expect(Date.now() - last.at).to.be.below(60_000);
  });

  it('a replica started later does not replay what the relay already holds', async () => {
    const c = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      identity: 'relay-c',
      // No shards: it only watches the relay.
      sharding: { ownership: new StaticShardOwnership(SHARDS, []) },
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await relayed(c.metrics, 'applied')).to.equal(0);
      // It does apply what comes after (it holds no ManagedSecret: nothing syncs there).
      a!.manager.notifyChanged(storeKey(), ['api-token'], 'webhook');
      await waitForSecretData(client(), namespace, otherOnB, (d) => d.v === 'two', 5_000);
      const deadline = Date.now() + 5_000;
      while ((await relayed(c.metrics, 'applied')) === 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await relayed(c.metrics, 'applied')).to.equal(1);
      expect(await notified(c.metrics, 'relay', 'managed_secrets')).to.equal(0);
    } finally {
      await c.stop();
    }
  });

  it('a replica holding every shard of its namespace relays nothing, and syncs what it was told', async () => {
    const alone = uniqueName('shard-relay-alone');
    await ensureNamespace(client(), alone);
    const own = await createLocalStore(client(), alone);
    try {
      await own.store.put('solo', { v: 'one' });
      await createSecretStore(client(), alone, 'local', own.dir);
      const d = await startOperator(sharedCluster(), {
        namespaces: [alone],
        identity: 'relay-d',
        sharding: { ownership: new StaticShardOwnership(SHARDS, [0, 1, 2, 3]) },
      });
      try {
        await createManagedSecret(client(), alone, {
          metadata: { name: 'solo' },
          spec: { storeRef: { name: 'local' }, refreshInterval: '1h', dataFrom: [{ extract: { key: 'solo' } }] },
        });
        await waitForReady(client(), alone, 'solo', 'True', 'Synced', 30_000);
        await own.store.put('solo', { v: 'two' });
        expect(d.manager.notifyChanged(queueKey.secretStore(alone, 'local'), ['solo'], 'webhook')).to.equal(1);
        await waitForSecretData(client(), alone, 'solo', (data) => data.v === 'two', 5_000);
        // Past the relay's batch window: still nothing published.
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await relayed(d.metrics, 'published')).to.equal(0);
      } finally {
        await d.stop();
      }
    } finally {
      own.cleanup();
    }
  });
});
