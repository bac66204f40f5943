// IBM Cloud Secrets Manager through the real operator and control plane,
// against the contract server (tools/ibm-sm-server/, not the live service):
// a certificate into a kubernetes.io/tls Secret, a trusted profile logged in
// with a ServiceAccount token from the real TokenRequest API, 403 keeping the
// Secret, 404 dropping a key only under deletionPolicy Delete, and the store's
// status following reads to the secondary instance and back.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  runEventsWebhook,
  signNotification,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  WEBHOOK_PATH,
} from '../../../src/events/webhook.js';
import { createLogger } from '../../../src/observability/logger.js';
import { API_VERSION, type SecretStore } from '../../../src/api/types.js';
import { IbmSecretsManagerServer, sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  listEvents,
  OPERATOR_NAMESPACE,
  startOperator,
  testStorePolicy,
  waitForReady,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';

const API_KEY = 'operator-test-api-key';
const CERT = '-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----';
const INTERMEDIATE = '-----BEGIN CERTIFICATE-----\nintermediate\n-----END CERTIFICATE-----';
const KEY = '-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----';

describe('IBM Cloud Secrets Manager through the operator (contract server)', function () {
  this.timeout(120_000);
  const namespace = uniqueName('ibm');
  const client = () => adminClient(sharedCluster());
  const password = `ibm-${uniqueName('pw')}`;
  let operator: RunningOperator;
  let iam: IbmSecretsManagerServer;
  let primary: IbmSecretsManagerServer;
  let secondary: IbmSecretsManagerServer;
  const ids: Record<string, string> = {};

  async function login(): Promise<string> {
    const res = await fetch(`${iam.iamEndpoint}/identity/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey: API_KEY }).toString(),
    });
    return ((await res.json()) as { access_token: string }).access_token;
  }

  async function api(server: IbmSecretsManagerServer, method: string, path: string, body?: unknown) {
    const res = await fetch(`${server.serviceUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${await login()}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  }

  async function createStore(name: string, spec: Record<string, unknown>): Promise<void> {
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name },
        spec: { provider: { ibmSecretsManager: spec } },
      },
    });
  }

  const storeOf = async (name: string) =>
    (await client().request('GET', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores/${name}`)) as SecretStore;

  before(async () => {
    await installCrds(sharedCluster());
    iam = await IbmSecretsManagerServer.start();
    primary = await IbmSecretsManagerServer.start({ signingKey: iam.signingKey });
    secondary = await IbmSecretsManagerServer.start({ signingKey: iam.signingKey });
    const iamId = iam.contract.addApiKey(API_KEY, 'iam-ServiceId-operator-test');
    void iamId;
    iam.contract.addTrustedProfile({
      id: 'Profile-0001',
      name: 'secretsync-app',
      subject: `system:serviceaccount:${namespace}:app`,
    });
    for (const server of [primary, secondary]) {
      const made = await api(server, 'POST', '/api/v2/secrets', {
        secret_type: 'username_password',
        name: 'db',
        username: 'app',
        password,
      });
      if (server === primary) ids.db = String(made.id);
    }
    ids.web = String(
      (
        await api(primary, 'POST', '/api/v2/secrets', {
          secret_type: 'imported_cert',
          name: 'web',
          certificate: CERT,
          intermediate: INTERMEDIATE,
          private_key: KEY,
        })
      ).id,
    );
    ids.temp = String(
      (await api(primary, 'POST', '/api/v2/secrets', { secret_type: 'arbitrary', name: 'temp', payload: 'temp-value' }))
        .id,
    );
    await ensureNamespace(client(), namespace);
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ibm-creds' }, stringData: { apikey: API_KEY } },
    });
    await client().request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, {
      body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app' } },
    });
    const common = { iamEndpoint: iam.iamEndpoint, requestsPerSecond: 100 };
    await createStore('ibm', {
      ...common,
      serviceUrl: primary.serviceUrl,
      auth: { apiKeySecretRef: { name: 'ibm-creds', key: 'apikey' } },
    });
    await createStore('ibm-profile', {
      ...common,
      serviceUrl: primary.serviceUrl,
      auth: { trustedProfile: { profileName: 'secretsync-app', serviceAccountRef: { name: 'app' } } },
    });
    await createStore('ibm-failover', {
      ...common,
      serviceUrl: primary.serviceUrl,
      region: 'us-south',
      auth: { apiKeySecretRef: { name: 'ibm-creds', key: 'apikey' } },
      failover: [{ serviceUrl: secondary.serviceUrl, region: 'eu-de' }],
      circuitBreaker: { failureThreshold: 1, openSeconds: 1 },
    });
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: testStorePolicy([primary.serviceUrl, secondary.serviceUrl, iam.iamEndpoint]),
    });
  });

  after(async () => {
    await operator?.stop();
    await Promise.all([iam?.stop(), primary?.stop(), secondary?.stop()]);
  });

  it('a certificate becomes a kubernetes.io/tls Secret with the intermediate in ca.crt', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'web-tls' },
      spec: {
        storeRef: { name: 'ibm' },
        target: { type: 'kubernetes.io/tls' },
        data: ['tls.crt', 'tls.key', 'ca.crt'].map((k) => ({
          secretKey: k,
          remoteRef: { key: ids.web as string, property: k },
        })),
      },
    });
    const secret = await waitForSecretData(client(), namespace, 'web-tls', (d) => d['tls.crt'] === CERT);
    expect(secret.type).to.equal('kubernetes.io/tls');
    expect(decoded(secret)).to.deep.equal({ 'tls.crt': CERT, 'tls.key': KEY, 'ca.crt': INTERMEDIATE });
  });

  it('a trusted profile logs in with a ServiceAccount token from TokenRequest (cr-token)', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'by-profile' },
      spec: {
        storeRef: { name: 'ibm-profile' },
        data: [{ secretKey: 'password', remoteRef: { key: 'default/username_password/db', property: 'password' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'by-profile', (d) => d.password === password);
    const logins = iam.contract.requests.filter((r) => r.path === '/identity/token' && r.status === 200);
    expect(logins.length).to.be.greaterThan(0);
    expect(primary.contract.requests.some((r) => r.iamId === 'iam-Profile-0001')).to.equal(true);
  });

  it('403 (PermissionDenied) keeps the Secret; a deleted secret drops its key only under deletionPolicy Delete', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'guarded' },
      spec: {
        storeRef: { name: 'ibm' },
        refreshInterval: '1s',
        data: [{ secretKey: 'password', remoteRef: { key: ids.db as string, property: 'password' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'guarded', (d) => d.password === password);
    primary.contract.deny('iam-ServiceId-operator-test');
    try {
      // 403 has its own reason (as Vault's), not the generic StoreNotReady.
      await waitForReady(client(), namespace, 'guarded', 'False', 'PermissionDenied', 20_000);
      await sleep(1_500);
      expect(decoded(await getSecret(client(), namespace, 'guarded'))).to.deep.equal({ password });
    } finally {
      primary.contract.deny('iam-ServiceId-operator-test', false);
    }
    await waitForReady(client(), namespace, 'guarded', 'True', 'Synced', 20_000);

    for (const policy of ['Retain', 'Delete'] as const) {
      await createManagedSecret(client(), namespace, {
        metadata: { name: `temp-${policy.toLowerCase()}` },
        spec: {
          storeRef: { name: 'ibm' },
          refreshInterval: '1s',
          target: { deletionPolicy: policy },
          data: [
            { secretKey: 'keep', remoteRef: { key: ids.db as string, property: 'username' } },
            { secretKey: 'gone', remoteRef: { key: ids.temp as string } },
          ],
        },
      });
      await waitForSecretData(client(), namespace, `temp-${policy.toLowerCase()}`, (d) => d.gone === 'temp-value');
    }
    await api(primary, 'DELETE', `/api/v2/secrets/${ids.temp}`);
    await waitForSecretData(
      client(),
      namespace,
      'temp-delete',
      (d) => d.gone === undefined && d.keep === 'app',
      15_000,
    );
    await waitForReady(client(), namespace, 'temp-retain', 'False', 'KeyNotFound', 15_000);
    expect(decoded(await getSecret(client(), namespace, 'temp-retain'))).to.deep.equal({
      keep: 'app',
      gone: 'temp-value',
    });
  });

  it('fan-in: 40 ManagedSecrets over 10 secrets share reads (about 10 to 15 per refresh cycle, not 40)', async () => {
    const fanIds: string[] = [];
    for (let k = 0; k < 10; k++)
      fanIds.push(
        String(
          (
            await api(primary, 'POST', '/api/v2/secrets', {
              secret_type: 'arbitrary',
              name: `fan-${k}`,
              payload: `v-${k}`,
            })
          ).id,
        ),
      );
    for (let i = 0; i < 40; i++)
      await createManagedSecret(client(), namespace, {
        metadata: { name: `fan-${i}` },
        spec: {
          storeRef: { name: 'ibm' },
          refreshInterval: '2s',
          data: [{ secretKey: 'value', remoteRef: { key: fanIds[i % 10] as string } }],
        },
      });
    await waitFor(
      'every fan-in Secret',
      async () => {
        for (let i = 0; i < 40; i++) {
          const s = await getSecret(client(), namespace, `fan-${i}`);
          if (decoded(s).value !== `v-${i % 10}`) return undefined;
        }
        return true;
      },
      60_000,
      500,
    );
    await sleep(2_000);
    const reads = () =>
      primary.contract.requests.filter(
        (r) => r.method === 'GET' && fanIds.some((id) => r.path === `/api/v2/secrets/${id}`),
      ).length;
    const before = reads();
    await sleep(6_000);
    const perCycle = (reads() - before) / 3;
    console.log(`      IBM reads per 2 s refresh cycle, 40 ManagedSecrets over 10 secrets: ${perCycle.toFixed(1)}`);
    // Reads are coalesced per secret: without that this would be 40 (one per ManagedSecret); refresh jitter adds some.
    expect(perCycle).to.be.at.most(25);
  });

  it('rotation writes one new version of a kv secret at the primary, with its token in version_custom_metadata', async () => {
    const id = String(
      (
        await api(primary, 'POST', '/api/v2/secrets', {
          secret_type: 'kv',
          name: 'rotating',
          data: { user: 'svc', password: 'initial-password' },
        })
      ).id,
    );
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'rotating' },
      spec: {
        storeRef: { name: 'ibm' },
        refreshInterval: '1s',
        data: [
          { secretKey: 'password', remoteRef: { key: 'default/kv/rotating', property: 'password' } },
          { secretKey: 'user', remoteRef: { key: 'default/kv/rotating', property: 'user' } },
        ],
        // The first rotation happens at once; the next in an hour.
        rotation: {
          interval: '1h',
          generator: { password: { length: 24 } },
          remoteRef: { key: 'default/kv/rotating', property: 'password' },
        },
      },
    });
    const secret = await waitForSecretData(
      client(),
      namespace,
      'rotating',
      (d) => d.password !== undefined && d.password !== 'initial-password',
      30_000,
    );
    expect(decoded(secret).user).to.equal('svc');
    await sleep(2_000);
    const versions = primary.contract.versionsOf(id);
    expect(versions).to.have.length(2);
    expect(versions[1]?.version_custom_metadata).to.have.property('secretsync_request_token').that.is.a('string');
    const ms = await waitFor(
      'rotationVersion',
      async () => {
        const m = await getManagedSecret(client(), namespace, 'rotating');
        return m.status?.rotationVersion ? m : undefined;
      },
      10_000,
      200,
    );
    expect(ms.status?.rotationVersion).to.equal(versions[1]?.id);
    const current = await api(primary, 'GET', `/api/v2/secrets/${id}`);
    expect((current.data as Record<string, string>).password).to.equal(decoded(secret).password);
  });

  it('a signed webhook notification (from an Event Notifications relay) re-reads the changed secret at once', async () => {
    const hookKey = randomBytes(32);
    const hookSecret = uniqueName('ibm-hook');
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    await client().request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: hookSecret },
        data: { key: hookKey.toString('base64') },
      },
    });
    const webhook = await runEventsWebhook(operator.manager, {
      port: 0,
      host: '127.0.0.1',
      namespace: OPERATOR_NAMESPACE,
      secretName: hookSecret,
      log: createLogger('error'),
    });
    try {
      const id = String(
        (await api(primary, 'POST', '/api/v2/secrets', { secret_type: 'arbitrary', name: 'notified', payload: 'n0' }))
          .id,
      );
      await createManagedSecret(client(), namespace, {
        metadata: { name: 'notified' },
        spec: {
          storeRef: { name: 'ibm' },
          refreshInterval: '1h',
          data: [{ secretKey: 'value', remoteRef: { key: 'default/arbitrary/notified' } }],
        },
      });
      await waitForSecretData(client(), namespace, 'notified', (d) => d.value === 'n0');
      await api(primary, 'POST', `/api/v2/secrets/${id}/versions`, { payload: 'n1' });
      // What a relay for an IBM Cloud Event Notifications "secret rotated" event sends: the key the ManagedSecret reads.
      const body = JSON.stringify({
        store: { kind: 'SecretStore', name: 'ibm', namespace },
        keys: ['default/arbitrary/notified', id],
      });
      const ts = String(Math.floor(Date.now() / 1000));
      const res = await fetch(`http://127.0.0.1:${webhook.port}${WEBHOOK_PATH}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [TIMESTAMP_HEADER]: ts,
          [SIGNATURE_HEADER]: signNotification(hookKey, ts, body),
        },
        body,
      });
      expect(res.status).to.equal(204);
      await waitForSecretData(client(), namespace, 'notified', (d) => d.value === 'n1', 10_000);
    } finally {
      await webhook.close();
      await client()
        .request('DELETE', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${hookSecret}`)
        .catch(() => undefined);
    }
  });

  it('the store reports the secondary instance while the primary is down, and the primary again after', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'replicated' },
      spec: {
        storeRef: { name: 'ibm-failover' },
        refreshInterval: '1s',
        data: [{ secretKey: 'password', remoteRef: { key: 'default/username_password/db', property: 'password' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'replicated', (d) => d.password === password);
    // Requests are counted per serving instance (endpoint = its host), so the secondary's share shows.
    const servedBy = async (server: IbmSecretsManagerServer) =>
      (await operator.metrics.providerRequests.get()).values
        .filter(
          (v) =>
            v.labels.provider === 'ibmSecretsManager' &&
            v.labels.endpoint === new URL(server.serviceUrl).host &&
            v.labels.result === 'success',
        )
        .reduce((n, v) => n + v.value, 0);
    const secondaryBefore = await servedBy(secondary);
    expect(await servedBy(primary)).to.be.greaterThan(0);
    await primary.kill();
    try {
      await waitFor(
        'store ibm-failover served by eu-de',
        async () => ((await storeOf('ibm-failover')).status?.activeRegion === 'eu-de' ? true : undefined),
        30_000,
        200,
      );
      await waitForReady(client(), namespace, 'replicated', 'True', 'Synced', 15_000);
      expect(await servedBy(secondary)).to.be.greaterThan(secondaryBefore);
    } finally {
      await primary.restart();
    }
    await waitFor(
      'store ibm-failover back at us-south',
      async () => ((await storeOf('ibm-failover')).status?.activeRegion === 'us-south' ? true : undefined),
      30_000,
      200,
    );
    // Nothing secret in Events or logs.
    const events = JSON.stringify(await listEvents(client(), namespace));
    for (const text of [events, operator.logs.join('\n')]) {
      expect(text).to.not.include(password);
      expect(text).to.not.include(API_KEY);
    }
  });
});
