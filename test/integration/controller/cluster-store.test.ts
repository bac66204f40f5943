import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_VERSION } from '../../../src/api/types.js';
import { LocalStore } from '../../../src/providers/local/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import { waitFor } from '../../../tools/testenv/processes.js';
import {
  OPERATOR_NAMESPACE,
  adminClient,
  createManagedSecret,
  ensureNamespace,
  getSecret,
  readyOf,
  startOperator,
  waitForReady,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';

describe('ClusterSecretStore namespace conditions', function () {
  this.timeout(60_000);
  let operator: RunningOperator;
  const dir = mkdtempSync(join(tmpdir(), 'secretsync-css-'));
  const storeName = uniqueName('shared-store');
  const byName = uniqueName('allowed-by-name');
  const byLabel = uniqueName('allowed-by-label');
  const denied = uniqueName('denied');
  const client = () => adminClient(sharedCluster());

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    await ensureNamespace(client(), byName);
    await ensureNamespace(client(), byLabel, { 'secretsync.io/tenant': 'yes' });
    await ensureNamespace(client(), denied);
    const masterKey = randomBytes(32);
    await client().request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `${storeName}-key` },
        data: { 'master-key': masterKey.toString('base64') },
      },
    });
    await new LocalStore(dir, masterKey).put('common', { token: 'shared-token' });
    await client().request('POST', `/apis/${API_VERSION}/clustersecretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ClusterSecretStore',
        metadata: { name: storeName },
        spec: {
          provider: {
            local: { path: dir, masterKeySecretRef: { name: `${storeName}-key`, namespace: OPERATOR_NAMESPACE } },
          },
          conditions: [
            { namespaces: [byName] },
            { namespaceSelector: { matchLabels: { 'secretsync.io/tenant': 'yes' } } },
          ],
        },
      },
    });
    // Only these namespaces: a cluster-wide operator would also work through every other test's leftovers.
    operator = await startOperator(sharedCluster(), { namespaces: [byName, byLabel, denied] });
    for (const ns of [byName, byLabel, denied]) {
      await createManagedSecret(client(), ns, {
        metadata: { name: 'token' },
        spec: {
          storeRef: { kind: 'ClusterSecretStore', name: storeName },
          data: [{ secretKey: 'token', remoteRef: { key: 'common', property: 'token' } }],
        },
      });
    }
  });

  after(async () => {
    await operator?.stop();
    await client()
      .request('DELETE', `/apis/${API_VERSION}/clustersecretstores/${storeName}`)
      .catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('allows a namespace listed by name', async () => {
    await waitForSecretData(client(), byName, 'token', (d) => d.token === 'shared-token');
  });

  it('allows a namespace matched by label selector', async () => {
    await waitForSecretData(client(), byLabel, 'token', (d) => d.token === 'shared-token');
  });

  it('denies any other namespace with StoreNotAllowed, and allows it once its labels match', async () => {
    const ms = await waitForReady(client(), denied, 'token', 'False', 'StoreNotAllowed');
    expect(readyOf(ms)?.message).to.contain(denied);
    expect(await getSecret(client(), denied, 'token')).to.equal(undefined);
    await client().request('PATCH', `/api/v1/namespaces/${denied}`, {
      body: { metadata: { labels: { 'secretsync.io/tenant': 'yes' } } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(client(), denied, 'token', (d) => d.token === 'shared-token', 10_000);
  });

  it('reports the store Ready after a real check', async () => {
    const store = await client().get<{ status?: { conditions?: { type: string; status: string; reason: string }[] } }>(
      `/apis/${API_VERSION}/clustersecretstores/${storeName}`,
    );
    expect(store.status?.conditions?.find((c) => c.type === 'Ready')).to.include({ status: 'True', reason: 'Valid' });
  });

  it('records Events about a ClusterSecretStore in the default namespace (the only one the API server takes)', async () => {
    const broken = uniqueName('broken-store');
    await client().request('POST', `/apis/${API_VERSION}/clustersecretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ClusterSecretStore',
        metadata: { name: broken },
        spec: {
          provider: {
            local: { path: dir, masterKeySecretRef: { name: `${broken}-absent`, namespace: OPERATOR_NAMESPACE } },
          },
        },
      },
    });
    try {
      await waitFor(
        'a Warning Event about the broken ClusterSecretStore in default',
        async () => {
          const events = await client().get<{ items: { type: string }[] }>('/api/v1/namespaces/default/events', {
            fieldSelector: `involvedObject.name=${broken}`,
          });
          return events.items.some((e) => e.type === 'Warning') ? true : undefined;
        },
        20_000,
      );
      expect(operator.logs.join('\n')).to.not.contain('could not record an Event');
    } finally {
      await client()
        .request('DELETE', `/apis/${API_VERSION}/clustersecretstores/${broken}`)
        .catch(() => undefined);
    }
  });
});
