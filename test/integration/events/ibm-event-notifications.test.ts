// IBM Cloud Event Notifications → the webhook, end to end: the contract server
// (tools/ibm-sm-server/, not the live service) POSTs what Event Notifications
// delivers to a webhook destination, with the destination's token header, after
// a secret gets a new version; the operator (real control plane) reads only
// that secret again and the Secret changes without polling (refreshInterval
// 1h). A wrong token, a stale time or an oversized body is refused and changes
// nothing; a re-delivery causes no second read; a notification for a secret no
// ManagedSecret reads causes no backend read at all.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { IBM_EN_PATH } from '../../../src/events/ibm-event-notifications.js';
import {
  IBM_EN_SECRET_KEY,
  MAX_BODY_BYTES,
  runEventsWebhook,
  type RunningWebhook,
} from '../../../src/events/webhook.js';
import { API_VERSION } from '../../../src/api/types.js';
import { createLogger } from '../../../src/observability/logger.js';
import { IbmSecretsManagerServer, sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  decoded,
  ensureNamespace,
  getSecret,
  OPERATOR_NAMESPACE,
  startOperator,
  testStorePolicy,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';

const API_KEY = 'en-test-api-key';

describe('events: IBM Cloud Event Notifications (contract server)', function () {
  this.timeout(120_000);
  const namespace = uniqueName('ibm-en');
  const tokenSecret = uniqueName('ibm-en-token');
  const token = randomBytes(32).toString('hex');
  const client = () => adminClient(sharedCluster());
  let operator: RunningOperator | undefined;
  let webhook: RunningWebhook | undefined;
  let iam: IbmSecretsManagerServer;
  let primary: IbmSecretsManagerServer;
  const ids: Record<string, string> = {};

  const url = () => `http://127.0.0.1:${webhook?.port}${IBM_EN_PATH}`;

  async function api(method: string, path: string, body?: unknown) {
    const login = await fetch(`${iam.iamEndpoint}/identity/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey: API_KEY }).toString(),
    });
    const { access_token: bearer } = (await login.json()) as { access_token: string };
    const res = await fetch(`${primary.serviceUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status}`);
    return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  }

  /** Reads of one secret at the instance (by id, or by group, type and name). */
  const readsOf = (name: string) =>
    primary.contract.requests.filter(
      (r) =>
        r.method === 'GET' &&
        (r.path === `/api/v2/secrets/${ids[name]}` || r.path.endsWith(`/secret_types/arbitrary/secrets/${name}`)),
    ).length;
  /** Every read of a secret or its versions (not the store check's list). */
  const secretReads = () =>
    primary.contract.requests.filter(
      (r) => r.method === 'GET' && /^\/api\/v2\/(secrets\/|secret_groups\/)/.test(r.path),
    ).length;

  const deliver = async (body: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }) => {
    const res = await fetch(url(), {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json', ...headers },
      body,
    });
    return { status: res.status, text: await res.text() };
  };
  const rotatedNotice = (name: string, time?: string) => {
    const n = primary.contract.notificationFor('secret_rotated', {
      id: ids[name] as string,
      name,
      secret_type: 'arbitrary',
      secret_group_id: 'default',
    });
    return JSON.stringify(time ? { ...n, time } : n);
  };

  before(async () => {
    await installCrds(sharedCluster());
    iam = await IbmSecretsManagerServer.start();
    primary = await IbmSecretsManagerServer.start({ signingKey: iam.signingKey });
    iam.contract.addApiKey(API_KEY, 'iam-ServiceId-en-test');
    for (const name of ['watched', 'byid', 'unused'])
      ids[name] = String(
        (await api('POST', '/api/v2/secrets', { secret_type: 'arbitrary', name, payload: `${name}-0` })).id,
      );
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ibm-creds' }, stringData: { apikey: API_KEY } },
    });
    await client().request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: tokenSecret },
        stringData: { [IBM_EN_SECRET_KEY]: token },
      },
    });
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: 'ibm' },
        spec: {
          provider: {
            ibmSecretsManager: {
              // The contract server's URL does not carry the instance id: instanceId names it.
              serviceUrl: primary.serviceUrl,
              instanceId: primary.contract.instanceId,
              iamEndpoint: iam.iamEndpoint,
              requestsPerSecond: 100,
              auth: { apiKeySecretRef: { name: 'ibm-creds', key: 'apikey' } },
            },
          },
        },
      },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'watched' },
      spec: {
        storeRef: { name: 'ibm' },
        refreshInterval: '1h',
        data: [{ secretKey: 'value', remoteRef: { key: 'default/arbitrary/watched' } }],
      },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'byid' },
      spec: {
        storeRef: { name: 'ibm' },
        refreshInterval: '1h',
        data: [{ secretKey: 'value', remoteRef: { key: ids.byid as string } }],
      },
    });
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: testStorePolicy([primary.serviceUrl, iam.iamEndpoint]),
    });
    webhook = await runEventsWebhook(operator.manager, {
      port: 0,
      host: '127.0.0.1',
      namespace: OPERATOR_NAMESPACE,
      secretName: uniqueName('unused-hmac'),
      ibmEventNotificationsSecret: tokenSecret,
      log: createLogger('error'),
    });
    await waitForSecretData(client(), namespace, 'watched', (d) => d.value === 'watched-0');
    await waitForSecretData(client(), namespace, 'byid', (d) => d.value === 'byid-0');
  });

  after(async () => {
    primary?.contract.notifyTo(undefined);
    await webhook?.close();
    await operator?.stop();
    await Promise.all([iam?.stop(), primary?.stop()]);
    await client()
      .request('DELETE', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${tokenSecret}`)
      .catch(() => undefined);
  });

  it('a new version at the instance reaches the Secret without polling, reading only that secret', async () => {
    primary.contract.notifyTo({ url: url(), headers: { authorization: `Bearer ${token}` } });
    try {
      const byidReads = readsOf('byid');
      const started = Date.now();
      await api('POST', `/api/v2/secrets/${ids.watched}/versions`, { payload: 'watched-1' });
      await waitForSecretData(client(), namespace, 'watched', (d) => d.value === 'watched-1', 10_000);
      console.log(`      new version → Secret through Event Notifications: ${Date.now() - started} ms`);
      await primary.contract.deliveriesSettled();
      expect(primary.contract.deliveries.map((d) => [d.type, d.status])).to.deep.include([
        'com.ibm.cloud.secrets-manager.secret_rotated',
        204,
      ]);
      // A ManagedSecret that reads by id is found from the notification's secret_id (a CRN) as well.
      await api('POST', `/api/v2/secrets/${ids.byid}/versions`, { payload: 'byid-1' });
      await waitForSecretData(client(), namespace, 'byid', (d) => d.value === 'byid-1', 10_000);
      expect(readsOf('byid') - byidReads).to.be.at.most(2);
    } finally {
      primary.contract.notifyTo(undefined);
    }
  });

  it('refuses a wrong token, a stale time and an oversized body with a bare status, and changes nothing', async () => {
    // A change no delivery announces yet.
    await api('POST', `/api/v2/secrets/${ids.watched}/versions`, { payload: 'watched-2' });
    const before = readsOf('watched');
    const refused = [
      await deliver(rotatedNotice('watched'), { authorization: `Bearer ${randomBytes(32).toString('hex')}` }),
      await deliver(rotatedNotice('watched'), {}),
      await deliver(rotatedNotice('watched', new Date(Date.now() - 30 * 60_000).toISOString())),
      await deliver(JSON.stringify({ ...JSON.parse(rotatedNotice('watched')), padding: 'x'.repeat(MAX_BODY_BYTES) })),
      await deliver(JSON.stringify({ specversion: '1.0', id: 'x', source: 'y', type: 'z', time: 'now', data: {} })),
    ];
    expect(refused.map((r) => r.status)).to.deep.equal([401, 401, 401, 413, 400]);
    expect(refused.every((r) => r.text === '')).to.equal(true);
    await sleep(1_500);
    expect(readsOf('watched')).to.equal(before);
    expect(decoded(await getSecret(client(), namespace, 'watched')).value).to.equal('watched-1');
  });

  it('a re-delivered notification (same source and id) causes no second read', async () => {
    const body = rotatedNotice('watched');
    const first = await deliver(body);
    expect(first.status).to.equal(204);
    await waitForSecretData(client(), namespace, 'watched', (d) => d.value === 'watched-2', 10_000);
    await sleep(500);
    const reads = readsOf('watched');
    const again = await deliver(body);
    expect(again.status).to.equal(204);
    await sleep(1_500);
    expect(readsOf('watched')).to.equal(reads);
  });

  it('a notification for a secret no ManagedSecret reads causes no backend read', async () => {
    primary.contract.notifyTo({ url: url(), headers: { authorization: `Bearer ${token}` } });
    try {
      await sleep(500);
      const before = secretReads();
      await api('POST', `/api/v2/secrets/${ids.unused}/versions`, { payload: 'unused-1' });
      await waitFor(
        'the delivery',
        async () =>
          primary.contract.deliveries.some((d) => d.secretId === ids.unused && d.status !== 0) ? true : undefined,
        10_000,
        100,
      );
      expect(primary.contract.deliveries.find((d) => d.secretId === ids.unused)?.status).to.equal(204);
      // A secret the ManagedSecrets read, but in an instance no store uses: accepted, nothing read.
      const otherInstance = 'crn:v1:bluemix:public:secrets-manager:eu-de:a/test:9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d::';
      const foreign = JSON.parse(rotatedNotice('watched')) as { source: string; data: Record<string, unknown> };
      foreign.source = otherInstance;
      foreign.data.source_instance_crn = otherInstance;
      expect((await deliver(JSON.stringify(foreign))).status).to.equal(204);
      await sleep(1_500);
      expect(secretReads()).to.equal(before);
    } finally {
      primary.contract.notifyTo(undefined);
    }
  });
});
