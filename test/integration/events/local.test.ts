// Event-driven sync from the local store, against the real control plane: a
// `store put` reaches the Secret in well under a second although the
// ManagedSecret refreshes hourly; only the ManagedSecrets that read the changed
// entry are synced; a duplicate notification writes nothing; and when the
// watcher cannot read the store, the store says EventsDegraded, its
// ManagedSecrets poll at the fallback interval, and events resume afterwards.
import { expect } from 'chai';
import { renameSync } from 'node:fs';
import { API_VERSION, type SecretStore } from '../../../src/api/types.js';
import { localWatchSettings } from '../../../src/providers/local/watch.js';
import { waitFor } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  decoded,
  ensureNamespace,
  getSecret,
  listEvents,
  startOperator,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

const client = () => adminClient(sharedCluster());

async function createWatchedStore(namespace: string, name: string, dir: string, fallback: string): Promise<void> {
  await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'SecretStore',
      metadata: { name },
      spec: {
        provider: {
          local: {
            path: dir,
            masterKeySecretRef: { name: 'master-key' },
            events: { watch: true, fallbackRefreshInterval: fallback },
          },
        },
      },
    },
  });
}

function eventsCondition(store: SecretStore) {
  return store.status?.conditions?.find((c) => c.type === 'EventsDegraded');
}

async function waitForEventsDegraded(namespace: string, name: string, status: 'True' | 'False', timeoutMs = 15_000) {
  return waitFor(
    `SecretStore ${namespace}/${name} EventsDegraded=${status}`,
    async () => {
      const store = await client().get<SecretStore>(
        `/apis/${API_VERSION}/namespaces/${namespace}/secretstores/${name}`,
      );
      return eventsCondition(store)?.status === status ? store : undefined;
    },
    timeoutMs,
    50,
  );
}

async function getValueReads(operator: RunningOperator): Promise<number> {
  return (await operator.metrics.providerRequests.get()).values
    .filter((v) => v.labels.operation === 'getValue' && v.labels.provider === 'local')
    .reduce((n, v) => n + v.value, 0);
}

async function syncCounts(operator: RunningOperator): Promise<{ synced: number; unchanged: number }> {
  const values = (await operator.metrics.syncs.get()).values;
  const sum = (result: string) => values.filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0);
  return { synced: sum('synced'), unchanged: sum('unchanged') };
}

/** Milliseconds from `change()` resolving to the Secret holding `expected` under `key`. */
async function latencyOf(
  namespace: string,
  secret: string,
  key: string,
  expected: string,
  change: () => Promise<unknown>,
): Promise<number> {
  await change();
  const start = performance.now();
  await waitFor(
    `Secret ${namespace}/${secret} ${key}=${expected}`,
    async () => ((decoded(await getSecret(client(), namespace, secret))[key] ?? '') === expected ? true : undefined),
    10_000,
    10,
  );
  return performance.now() - start;
}

describe('events: the local store watcher', function () {
  this.timeout(120_000);
  const namespace = uniqueName('events-local');
  let operator: RunningOperator | undefined;
  let fixture: LocalStoreFixture;
  const savedRetry = localWatchSettings.retryMs;

  before(async () => {
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('app/db', { value: 'v0' });
    await fixture.store.put('app/api', { value: 'a0' });
    await fixture.store.put('unused/entry', { value: 'u0' });
    await fixture.store.put('team/one', { value: 't1' });
    await createWatchedStore(namespace, 'local', fixture.dir, '2s');
    // Three readers of app/db, one of app/api, one find over team/.
    for (const name of ['db-1', 'db-2', 'db-3'])
      await createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1h',
          data: [{ secretKey: 'password', remoteRef: { key: 'app/db', property: 'value' } }],
        },
      });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'api' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1h',
        data: [{ secretKey: 'token', remoteRef: { key: 'app/api', property: 'value' } }],
      },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'team' },
      spec: { storeRef: { name: 'local' }, refreshInterval: '1h', dataFrom: [{ find: { prefix: 'team/' } }] },
    });
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    for (const name of ['db-1', 'db-2', 'db-3'])
      await waitForSecretData(client(), namespace, name, (d) => d.password === 'v0');
    await waitForSecretData(client(), namespace, 'api', (d) => d.token === 'a0');
    await waitForSecretData(client(), namespace, 'team', (d) => d.one === 't1');
    await waitForEventsDegraded(namespace, 'local', 'False');
  });

  after(async () => {
    localWatchSettings.retryMs = savedRetry;
    await operator?.stop();
    fixture?.cleanup();
  });

  it('is refused at admission with watch: false or a fallback interval below 1s', async () => {
    for (const events of [{ watch: false }, { watch: true, fallbackRefreshInterval: '500ms' }]) {
      const err = await client()
        .request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
          body: {
            apiVersion: API_VERSION,
            kind: 'SecretStore',
            metadata: { name: 'refused' },
            spec: { provider: { local: { path: fixture.dir, masterKeySecretRef: { name: 'master-key' }, events } } },
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e as { status?: number; message?: string },
        );
      expect(err?.status, JSON.stringify(events)).to.equal(422);
      expect(err?.message).to.match(/events\.(watch must be true|fallbackRefreshInterval must be a duration)/);
    }
  });

  it('brings a store put to the Secret within 500 ms although refreshInterval is 1h', async () => {
    const latencies: number[] = [];
    for (let i = 1; i <= 5; i++)
      latencies.push(
        await latencyOf(namespace, 'db-2', 'password', `v${i}`, () => fixture.store.put('app/db', { value: `v${i}` })),
      );
    latencies.sort((a, b) => a - b);
    expect(latencies[2], `median of ${latencies.map(Math.round).join(', ')} ms`).to.be.below(500);
    expect(latencies[4], `slowest of ${latencies.map(Math.round).join(', ')} ms`).to.be.below(2_000);
    // Every reader of the entry followed; the others were not touched.
    for (const name of ['db-1', 'db-3'])
      await waitForSecretData(client(), namespace, name, (d) => d.password === 'v5', 2_000);
    expect(decoded(await getSecret(client(), namespace, 'api')).token).to.equal('a0');
  });

  it('reads nothing from the backend for a change to an entry no ManagedSecret uses', async () => {
    if (!operator) throw new Error('no operator');
    const before = await getValueReads(operator);
    const apiVersion = (await getSecret(client(), namespace, 'api'))?.metadata.resourceVersion;
    await fixture.store.put('unused/entry', { value: 'u1' });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await getValueReads(operator)).to.equal(before);
    expect((await getSecret(client(), namespace, 'api'))?.metadata.resourceVersion).to.equal(apiVersion);
  });

  it('reads one entry once for all its readers, and a find spec follows a new matching entry', async () => {
    if (!operator) throw new Error('no operator');
    const before = await getValueReads(operator);
    await fixture.store.put('app/api', { value: 'a1' });
    await waitForSecretData(client(), namespace, 'api', (d) => d.token === 'a1', 2_000);
    await new Promise((r) => setTimeout(r, 300));
    expect((await getValueReads(operator)) - before).to.equal(1);
    await fixture.store.put('team/two', { value: 't2' });
    await waitForSecretData(client(), namespace, 'team', (d) => d.two === 't2' && d.one === 't1', 2_000);
  });

  it('writes nothing for a duplicate notification', async () => {
    if (!operator) throw new Error('no operator');
    const secretBefore = await getSecret(client(), namespace, 'db-1');
    const before = await syncCounts(operator);
    const storeKey = `ss/${namespace}/local`;
    // The same change announced twice more (a duplicate delivery): both sync, neither writes.
    expect(operator.manager.changes.changed(storeKey, ['app/db'], 'test')).to.equal(3);
    await new Promise((r) => setTimeout(r, 300));
    expect(operator.manager.changes.changed(storeKey, ['app/db'], 'test')).to.equal(3);
    await new Promise((r) => setTimeout(r, 700));
    const after = await syncCounts(operator);
    expect(after.unchanged - before.unchanged).to.be.at.least(6);
    expect(after.synced - before.synced).to.equal(0);
    expect((await getSecret(client(), namespace, 'db-1'))?.metadata.resourceVersion).to.equal(
      secretBefore?.metadata.resourceVersion,
    );
  });

  it('reports EventsDegraded when the watcher cannot read the store, polls at the fallback interval, and recovers', async () => {
    // The watcher's retry comes late here, so that only the fallback polling can bring the next change.
    localWatchSettings.retryMs = 12_000;
    const away = `${fixture.dir}.away`;
    renameSync(fixture.dir, away);
    let restored = false;
    try {
      const degraded = await waitForEventsDegraded(namespace, 'local', 'True', 10_000);
      expect(eventsCondition(degraded)?.reason).to.equal('StoreUnreadable');
      expect(eventsCondition(degraded)?.message).to.include('refresh every 2s');
      renameSync(away, fixture.dir);
      restored = true;
      const start = Date.now();
      await fixture.store.put('app/db', { value: 'polled' });
      await waitForSecretData(client(), namespace, 'db-1', (d) => d.password === 'polled', 8_000);
      // Brought by polling: the watcher has not come back yet.
      expect(operator?.manager.changes.fallbackMs(`ss/${namespace}/local`), `after ${Date.now() - start} ms`).to.equal(
        2_000,
      );
      const still = await client().get<SecretStore>(`/apis/${API_VERSION}/namespaces/${namespace}/secretstores/local`);
      expect(eventsCondition(still)?.status, `after ${Date.now() - start} ms`).to.equal('True');
      const events = await listEvents(client(), namespace);
      expect(events.some((e) => (e as { reason?: string }).reason === 'EventsDegraded')).to.equal(true);
    } finally {
      if (!restored) renameSync(away, fixture.dir);
    }
    await waitForEventsDegraded(namespace, 'local', 'False', 30_000);
    const events = await listEvents(client(), namespace);
    expect(events.some((e) => (e as { reason?: string }).reason === 'EventsRecovered')).to.equal(true);
    // Events again: fast.
    const ms = await latencyOf(namespace, 'api', 'token', 'a2', () => fixture.store.put('app/api', { value: 'a2' }));
    expect(ms).to.be.below(1_000);
  });
});
