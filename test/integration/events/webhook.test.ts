// The signed webhook against the real control plane and a real operator: a good
// notification syncs only the ManagedSecrets of the named entries; a wrong
// signature, an old timestamp, a replay or an oversized body is refused with a
// bare status and changes nothing.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  MAX_BODY_BYTES,
  runEventsWebhook,
  signNotification,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  WEBHOOK_PATH,
  type RunningWebhook,
} from '../../../src/events/webhook.js';
import { isAlreadyExists } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getSecret,
  OPERATOR_NAMESPACE,
  startOperator,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

const client = () => adminClient(sharedCluster());

describe('events: the signed webhook', function () {
  this.timeout(120_000);
  const namespace = uniqueName('events-hook');
  const secretName = uniqueName('hook-key');
  const key = randomBytes(32);
  let operator: RunningOperator | undefined;
  let webhook: RunningWebhook | undefined;
  let fixture: LocalStoreFixture;

  const url = () => `http://127.0.0.1:${webhook?.port}${WEBHOOK_PATH}`;
  const body = (keys: string[], store: object = { kind: 'SecretStore', name: 'local', namespace }) =>
    JSON.stringify({ store, keys });
  const send = async (text: string, opts: { key?: Buffer; ts?: number; signature?: string } = {}) => {
    const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
    const res = await fetch(url(), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [TIMESTAMP_HEADER]: ts,
        [SIGNATURE_HEADER]: opts.signature ?? signNotification(opts.key ?? key, ts, text),
      },
      body: text,
    });
    return { status: res.status, text: await res.text() };
  };
  const reads = async () =>
    (await operator!.metrics.providerRequests.get()).values
      .filter((v) => v.labels.operation === 'getValue')
      .reduce((n, v) => n + v.value, 0);
  const versions = async () =>
    Promise.all(['db', 'api'].map(async (n) => (await getSecret(client(), namespace, n))?.metadata.resourceVersion));

  before(async () => {
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    try {
      await client().request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: secretName },
          data: { key: key.toString('base64') },
        },
      });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('app/db', { value: 'd0' });
    await fixture.store.put('app/api', { value: 'a0' });
    // No `events` on the store: only the webhook tells the operator of a change.
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    for (const [name, entry] of [
      ['db', 'app/db'],
      ['api', 'app/api'],
    ] as const)
      await createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1h',
          data: [{ secretKey: 'value', remoteRef: { key: entry, property: 'value' } }],
        },
      });
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    webhook = await runEventsWebhook(operator.manager, {
      port: 0,
      host: '127.0.0.1',
      namespace: OPERATOR_NAMESPACE,
      secretName,
      log: createLogger('error'),
    });
    await waitForSecretData(client(), namespace, 'db', (d) => d.value === 'd0');
    await waitForSecretData(client(), namespace, 'api', (d) => d.value === 'a0');
    // The changes only the webhook can announce.
    await fixture.store.put('app/db', { value: 'd1' });
    await fixture.store.put('app/api', { value: 'a1' });
  });

  after(async () => {
    await webhook?.close();
    await operator?.stop();
    fixture?.cleanup();
    await client()
      .request('DELETE', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${secretName}`)
      .catch(() => undefined);
  });

  it('refuses a wrong signature, an old timestamp and an oversized body, with a bare status, and changes nothing', async () => {
    const before = await reads();
    const rv = await versions();
    const refused = [
      await send(body(['app/db']), { key: randomBytes(32) }),
      await send(body(['app/db']), { ts: Math.floor(Date.now() / 1000) - 600 }),
      await send(body(['app/db']), { signature: 'sha256=' + '0'.repeat(64) }),
      await send(
        JSON.stringify({
          store: { kind: 'SecretStore', name: 'local', namespace },
          keys: ['x'.repeat(MAX_BODY_BYTES)],
        }),
      ),
    ];
    expect(refused.map((r) => r.status)).to.deep.equal([401, 401, 401, 413]);
    expect(refused.every((r) => r.text === '')).to.equal(true);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await reads()).to.equal(before);
    expect(await versions()).to.deep.equal(rv);
    expect(decoded(await getSecret(client(), namespace, 'db')).value).to.equal('d0');
  });

  it('syncs only the ManagedSecrets of the named entries, and refuses the same request again', async () => {
    const ts = Math.floor(Date.now() / 1000);
    const text = body(['app/db']);
    const signature = signNotification(key, String(ts), text);
    const ok = await send(text, { ts, signature });
    expect(ok).to.deep.equal({ status: 204, text: '' });
    await waitForSecretData(client(), namespace, 'db', (d) => d.value === 'd1', 3_000);
    expect(decoded(await getSecret(client(), namespace, 'api')).value).to.equal('a0');
    // A replay of the very same request within the window.
    expect((await send(text, { ts, signature })).status).to.equal(401);
  });

  it('answers 404 for a store the operator does not know, 400 for a malformed body', async () => {
    expect((await send(body(['k'], { kind: 'SecretStore', name: 'nope', namespace }))).status).to.equal(404);
    expect((await send(body(['k'], { kind: 'ClusterSecretStore', name: 'nope' }))).status).to.equal(404);
    expect((await send('{"store":{}}')).status).to.equal(400);
    expect(decoded(await getSecret(client(), namespace, 'api')).value).to.equal('a0');
  });

  it('limits the requests of one source (last: it spends the burst)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await send(body(['app/db']), { key: randomBytes(32) })).status);
    expect(statuses.every((s) => s === 401 || s === 429)).to.equal(true);
    expect(statuses.filter((s) => s === 429).length).to.be.at.least(5);
  });
});
