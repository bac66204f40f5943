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
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  listEvents,
  readyOf,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

describe('ManagedSecret sync with the local store', function () {
  this.timeout(90_000);
  let operator: RunningOperator;
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('sync');
  const client = () => adminClient(sharedCluster());
  // Distinctive values: the leak checks below search every log line, Event and status for them.
  const secretValue = `pw-${uniqueName('v')}`;
  const otherValue = `user-${uniqueName('v')}`;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('db/prod', { username: otherValue, password: secretValue });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('creates the Secret with the right data and sets Ready=True within seconds', async () => {
    const started = Date.now();
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'db' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        data: [
          { secretKey: 'password', remoteRef: { key: 'db/prod', property: 'password' } },
          { secretKey: 'username', remoteRef: { key: 'db/prod', property: 'username' } },
        ],
      },
    });
    const secret = await waitForSecretData(
      client(),
      namespace,
      'db',
      (d) => d.password === secretValue && d.username === otherValue,
    );
    const ms = await waitForReady(client(), namespace, 'db', 'True', 'Synced');
    expect(Date.now() - started).to.be.lessThan(10_000);
    expect(secret.metadata.labels?.['app.kubernetes.io/managed-by']).to.equal('secretsync');
    expect(secret.metadata.annotations?.['secretsync.io/managed-secret']).to.equal('db');
    expect(secret.metadata.ownerReferences?.[0]).to.include({
      kind: 'ManagedSecret',
      name: 'db',
      uid: ms.metadata.uid,
    });
    expect(ms.status?.secretName).to.equal('db');
    expect(ms.status?.syncedVersion).to.match(/^hmac-sha256:[0-9a-f]{32}$/);
    expect(ms.status?.lastSyncTime).to.be.a('string');
  });

  it('leaves the Secret and status alone over several refreshes when nothing changed', async () => {
    const before = await getSecret(client(), namespace, 'db');
    const msBefore = await getManagedSecret(client(), namespace, 'db');
    const checksBefore = await providerReads(operator);
    await sleep(4_500);
    const after = await getSecret(client(), namespace, 'db');
    const msAfter = await getManagedSecret(client(), namespace, 'db');
    expect(after?.metadata.resourceVersion).to.equal(before?.metadata.resourceVersion);
    expect(msAfter.metadata.resourceVersion).to.equal(msBefore.metadata.resourceVersion);
    // It did look: refreshes ran (and found nothing new).
    expect((await providerReads(operator)) - checksBefore).to.be.greaterThanOrEqual(4);
  });

  it('brings a changed store value to the Secret on the next refresh', async () => {
    const newValue = `${secretValue}-rotated`;
    await fixture.store.put('db/prod', { username: otherValue, password: newValue });
    await waitForSecretData(client(), namespace, 'db', (d) => d.password === newValue, 5_000);
    await fixture.store.put('db/prod', { username: otherValue, password: secretValue });
    await waitForSecretData(client(), namespace, 'db', (d) => d.password === secretValue, 5_000);
  });

  it('restores a managed Secret deleted by hand within seconds', async () => {
    await client().request('DELETE', `/api/v1/namespaces/${namespace}/secrets/db`);
    const started = Date.now();
    await waitForSecretData(client(), namespace, 'db', (d) => d.password === secretValue, 5_000);
    expect(Date.now() - started).to.be.lessThan(5_000);
  });

  it('restores a key edited by hand within seconds', async () => {
    const secret = await getSecret(client(), namespace, 'db');
    if (!secret?.data) throw new Error('Secret missing');
    secret.data.password = Buffer.from('tampered').toString('base64');
    await client().request('PUT', `/api/v1/namespaces/${namespace}/secrets/db`, { body: secret });
    await waitForSecretData(client(), namespace, 'db', (d) => d.password === secretValue, 5_000);
  });

  it('honours the force-sync annotation at once, even with a long refresh interval', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'slow' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1h',
        data: [{ secretKey: 'u', remoteRef: { key: 'db/prod', property: 'username' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'slow', (d) => d.u === otherValue);
    const changed = `${otherValue}-2`;
    await fixture.store.put('db/prod', { username: changed, password: secretValue });
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/slow`, {
      body: { metadata: { annotations: { 'secretsync.io/force-sync': String(Date.now()) } } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(client(), namespace, 'slow', (d) => d.u === changed, 5_000);
    await fixture.store.put('db/prod', { username: otherValue, password: secretValue });
  });

  it('keeps the Secret when a key goes missing, reports KeyNotFound with an Event, and recovers by itself', async () => {
    await fixture.store.put('app/config', { token: secretValue });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'app' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        data: [{ secretKey: 'token', remoteRef: { key: 'app/config', property: 'token' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'app', (d) => d.token === secretValue);
    await fixture.store.delete('app/config');
    const ms = await waitForReady(client(), namespace, 'app', 'False', 'KeyNotFound');
    expect(readyOf(ms)?.message).to.contain('app/config');
    expect(decoded(await getSecret(client(), namespace, 'app'))).to.deep.equal({ token: secretValue });
    await waitFor(
      'a KeyNotFound Event',
      async () =>
        (await listEvents(client(), namespace)).some(
          (e) => e.reason === 'KeyNotFound' && (e.involvedObject as { name: string }).name === 'app',
        )
          ? true
          : undefined,
      5_000,
    );
    await fixture.store.put('app/config', { token: secretValue });
    await waitForReady(client(), namespace, 'app', 'True', 'Synced', 20_000);
  });

  it('keeps the Secret when the store is unreachable, reports ProviderError, and recovers when it is back', async () => {
    const { renameSync } = await import('node:fs');
    renameSync(fixture.dir, `${fixture.dir}.away`);
    try {
      const ms = await waitForReady(client(), namespace, 'db', 'False', 'ProviderError');
      expect(readyOf(ms)?.message).to.contain('SecretStore');
      expect(decoded(await getSecret(client(), namespace, 'db')).password).to.equal(secretValue);
    } finally {
      renameSync(`${fixture.dir}.away`, fixture.dir);
    }
    await waitForReady(client(), namespace, 'db', 'True', 'Synced', 30_000);
    expect(decoded(await getSecret(client(), namespace, 'db')).password).to.equal(secretValue);
  });

  it('reports StoreNotFound for a missing store', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'orphaned-ref' },
      spec: {
        storeRef: { name: 'no-such-store' },
        data: [{ secretKey: 'x', remoteRef: { key: 'db/prod', property: 'password' } }],
      },
    });
    const ms = await waitForReady(client(), namespace, 'orphaned-ref', 'False', 'StoreNotFound');
    expect(readyOf(ms)?.message).to.contain('no-such-store');
    expect(await getSecret(client(), namespace, 'orphaned-ref')).to.equal(undefined);
  });

  it('never lets a value reach the logs, Events, status or metrics', async () => {
    const events = JSON.stringify(await listEvents(client(), namespace));
    const statuses = JSON.stringify(
      (await client().list(`/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`)).items.map(
        (i) => (i as { status?: unknown }).status,
      ),
    );
    const logs = operator.logs.join('\n');
    const metrics = await operator.scrape();
    expect(operator.logs.length).to.be.greaterThan(5);
    expect(events).to.contain('KeyNotFound');
    for (const value of [secretValue, otherValue, Buffer.from(secretValue).toString('base64')]) {
      expect(logs).to.not.contain(value);
      expect(events).to.not.contain(value);
      expect(statuses).to.not.contain(value);
      expect(metrics).to.not.contain(value);
    }
  });
});

async function providerReads(operator: RunningOperator): Promise<number> {
  const metric = await operator.metrics.providerRequests.get();
  return metric.values.filter((v) => v.labels.operation === 'getValue').reduce((n, v) => n + v.value, 0);
}
