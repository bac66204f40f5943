// The ibmSecretsManager provider against the IBM Cloud Secrets Manager
// contract server (tools/ibm-sm-server/, not the live service): every secret
// type, version pins, extract, find with paging, rotation write-back exactly
// once, failover to a secondary instance and back, and how 401, 403, 404 and
// 429 are answered. The provider's context here holds Secrets in memory; the
// operator-level tests (ibm-secrets-manager-operator.test.ts) use the cluster.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { LimitError } from '../../../src/api/errors.js';
import type { ClusterSecretStore, IbmSecretsManagerProviderSpec, SecretStore } from '../../../src/api/types.js';
import { IbmUnauthorizedError, IbmUnavailableError } from '../../../src/providers/ibm-secrets-manager/http.js';
import { ibmSecretsManagerProvider, TOKEN_FIELD } from '../../../src/providers/ibm-secrets-manager/index.js';
import {
  KeyNotFoundError,
  ProviderConfigError,
  StorePolicyError,
  type FailoverMove,
  type ProviderClient,
  type ProviderContext,
} from '../../../src/providers/provider.js';
import { IbmSecretsManagerServer } from '../../../tools/testenv/index.js';
import { rejectionOf } from '../../unit/helpers/index.js';

const API_KEY = 'test-api-key-0123456789';
const CERT = '-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----';
const INTERMEDIATE = '-----BEGIN CERTIFICATE-----\nintermediate\n-----END CERTIFICATE-----';
const ROOT = '-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----';
const KEY = '-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----';

interface Ctx extends ProviderContext {
  operations: string[];
  moves: FailoverMove[];
}

function memoryContext(storeNamespace?: string, allowed: string[] = []): Ctx {
  const operations: string[] = [];
  const moves: FailoverMove[] = [];
  return {
    storeNamespace,
    allowOperatorIdentityForNamespacedStores: false,
    policy: { allowedEndpoints: allowed, localStoreRoot: undefined },
    timeouts: { connectMs: 1000, requestMs: 2000 },
    operations,
    moves,
    requestServiceAccountToken: async () => {
      throw new Error('no ServiceAccounts here');
    },
    async readSecretKey(namespace, name, key) {
      if (`${namespace}/${name}/${key}` === 'creds/ibm/apikey') return Buffer.from(API_KEY);
      throw new ProviderConfigError(`Secret ${namespace}/${name} has no key "${key}"`);
    },
    observe: (operation, call) => {
      operations.push(operation);
      return call();
    },
    onFailover: (move) => moves.push(move),
  };
}

function clusterStore(
  spec: IbmSecretsManagerProviderSpec,
  name = `ibm-${randomUUID().slice(0, 8)}`,
): ClusterSecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'ClusterSecretStore',
    metadata: { name },
    spec: { provider: { ibmSecretsManager: spec } },
  };
}

const apiKeyAuth = { apiKeySecretRef: { name: 'ibm', key: 'apikey', namespace: 'creds' } };

/** An admin's client of the contract server: creates secrets through the API, as the console would. */
async function admin(server: IbmSecretsManagerServer, iam: IbmSecretsManagerServer) {
  const tokenAnswer = await fetch(`${iam.iamEndpoint}/identity/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey: API_KEY }).toString(),
  });
  const { access_token: token } = (await tokenAnswer.json()) as { access_token: string };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.serviceUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };
  return {
    call,
    async create(body: Record<string, unknown>): Promise<string> {
      const res = await call('POST', '/api/v2/secrets', body);
      if (res.status !== 201) throw new Error(`create: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return String(res.body.id);
    },
    async group(name: string): Promise<string> {
      const res = await call('POST', '/api/v2/secret_groups', { name });
      return String(res.body.id);
    },
  };
}

describe('ibmSecretsManager provider (contract server)', function () {
  this.timeout(60_000);
  let iam: IbmSecretsManagerServer;
  let primary: IbmSecretsManagerServer;
  let secondary: IbmSecretsManagerServer;
  let client: ProviderClient | undefined;
  let ctx: Ctx;

  before(async () => {
    iam = await IbmSecretsManagerServer.start();
    primary = await IbmSecretsManagerServer.start({ signingKey: iam.signingKey, region: 'us-south' });
    secondary = await IbmSecretsManagerServer.start({ signingKey: iam.signingKey, region: 'eu-de' });
    iam.contract.addApiKey(API_KEY, 'iam-ServiceId-secretsync');
  });
  after(async () => {
    await Promise.all([iam?.stop(), primary?.stop(), secondary?.stop()]);
  });
  beforeEach(() => {
    primary.contract.reset();
    secondary.contract.reset();
    ctx = memoryContext();
  });
  afterEach(async () => {
    await client?.close();
    client = undefined;
  });

  const connect = async (extra: Partial<IbmSecretsManagerProviderSpec> = {}, name?: string) => {
    client = await ibmSecretsManagerProvider.connect(
      clusterStore({ serviceUrl: primary.serviceUrl, iamEndpoint: iam.iamEndpoint, auth: apiKeyAuth, ...extra }, name),
      ctx,
    );
    return client;
  };

  it('reads every secret type, by id and by secret group, type and name; certificates carry tls.crt, tls.key and ca.crt', async () => {
    const a = await admin(primary, iam);
    const group = await a.group('payments');
    const ids = {
      arbitrary: await a.create({ secret_type: 'arbitrary', name: 'token', secret_group_id: group, payload: 's3cr3t' }),
      user: await a.create({ secret_type: 'username_password', name: 'db', username: 'app', password: 'pw1' }),
      kv: await a.create({ secret_type: 'kv', name: 'cfg', data: { host: 'db.local', port: 5432 } }),
      iamCred: await a.create({
        secret_type: 'iam_credentials',
        name: 'svc',
        api_key: 'ak-1',
        service_id: 'ServiceId-1',
      }),
      imported: await a.create({
        secret_type: 'imported_cert',
        name: 'web',
        certificate: CERT,
        intermediate: INTERMEDIATE,
        private_key: KEY,
      }),
      publicCert: await a.create({
        secret_type: 'public_cert',
        name: 'pub',
        certificate: CERT,
        intermediate: INTERMEDIATE,
        private_key: KEY,
      }),
      privateCert: await a.create({
        secret_type: 'private_cert',
        name: 'internal',
        certificate: CERT,
        issuing_ca: INTERMEDIATE,
        ca_chain: [INTERMEDIATE, ROOT],
        private_key: KEY,
      }),
      creds: await a.create({
        secret_type: 'service_credentials',
        name: 'cos',
        credentials: { apikey: 'cos-key', iam_apikey_id: 'ApiKey-1', endpoints: 'https://cos' },
      }),
    };
    iam.contract.requests.length = 0;
    const c = await connect();
    expect(await c.getValue({ key: ids.arbitrary })).to.equal('s3cr3t');
    expect(await c.getValue({ key: 'payments/arbitrary/token' })).to.equal('s3cr3t');
    expect(await c.getValue({ key: 'default/username_password/db', property: 'password' })).to.equal('pw1');
    expect(await c.getProperties(ids.user)).to.deep.equal({ username: 'app', password: 'pw1' });
    expect(await c.getProperties(ids.kv)).to.deep.equal({ host: 'db.local', port: '5432' });
    expect(await c.getValue({ key: ids.kv, property: 'host' })).to.equal('db.local');
    expect(await c.getValue({ key: ids.iamCred })).to.equal('ak-1');
    for (const id of [ids.imported, ids.publicCert]) {
      const tls = await c.getProperties(id);
      expect([tls['tls.crt'], tls['tls.key'], tls['ca.crt']]).to.deep.equal([CERT, KEY, INTERMEDIATE]);
    }
    const priv = await c.getProperties(ids.privateCert);
    expect(priv['ca.crt']).to.equal(`${INTERMEDIATE}\n${ROOT}`);
    expect(priv['tls.key']).to.equal(KEY);
    expect(await c.getProperties(ids.creds)).to.deep.equal({
      apikey: 'cos-key',
      iam_apikey_id: 'ApiKey-1',
      endpoints: 'https://cos',
    });
    // A property the type does not have, and a secret that is not there: KeyNotFoundError (404), never a value.
    const missingProp = await rejectionOf(c.getValue({ key: ids.user, property: 'nope' }));
    expect(missingProp).to.be.instanceOf(KeyNotFoundError);
    const missing = await rejectionOf(c.getValue({ key: randomUUID() }));
    expect(missing).to.be.instanceOf(KeyNotFoundError);
    expect(String((missing as Error).message)).to.include('HTTP 404');
    expect(await rejectionOf(c.getValue({ key: 'payments/arbitrary/nope' }))).to.be.instanceOf(KeyNotFoundError);
    // One IAM login for all of it: the token is cached.
    expect(iam.contract.requests.filter((r) => r.path === '/identity/token')).to.have.length(1);
    expect(ctx.operations.filter((o) => o === 'IamToken')).to.have.length(1);
    expect(ctx.operations).to.include.members(['GetSecret', 'GetSecretByNameType']);
  });

  it('pins versions: current, previous and a version id; a version without its payload is not found', async () => {
    const a = await admin(primary, iam);
    const id = await a.create({ secret_type: 'arbitrary', name: 'pinned', payload: 'v1' });
    const v2 = (await a.call('POST', `/api/v2/secrets/${id}/versions`, { payload: 'v2' })).body.id as string;
    await a.call('POST', `/api/v2/secrets/${id}/versions`, { payload: 'v3' });
    const c = await connect();
    expect(await c.getValue({ key: id })).to.equal('v3');
    expect(await c.getValue({ key: id, version: 'current' })).to.equal('v3');
    expect(await c.getValue({ key: id, version: 'previous' })).to.equal('v2');
    expect(await c.getValue({ key: 'default/arbitrary/pinned', version: v2 })).to.equal('v2');
    const first = primary.contract.versionsOf(id)[0]?.id as string;
    // The oldest version keeps no payload (only current and previous do).
    expect(await rejectionOf(c.getValue({ key: id, version: first }))).to.be.instanceOf(KeyNotFoundError);
    expect(await rejectionOf(c.getValue({ key: id, version: randomUUID() }))).to.be.instanceOf(KeyNotFoundError);
  });

  it('finds by secret group, labels and name pattern across pages, and stops at maxEntries', async () => {
    const a = await admin(primary, iam);
    const group = await a.group('team-a');
    for (let i = 0; i < 450; i++) {
      await a.create({
        secret_type: 'arbitrary',
        name: `app-${String(i).padStart(3, '0')}`,
        secret_group_id: group,
        labels: i % 2 === 0 ? ['env:prod'] : ['env:dev'],
        payload: `value-${i}`,
      });
    }
    await a.create({ secret_type: 'kv', name: 'app-other-group', data: { k: 'v' }, labels: ['env:prod'] });
    const c = await connect({ requestsPerSecond: 1000 });
    primary.contract.requests.length = 0;
    const found = await c.find({ prefix: 'app-', secretGroup: 'team-a', labels: ['env:prod'] });
    expect(found.size).to.equal(225);
    expect(found.get('app-000')).to.deep.equal({ payload: 'value-0' });
    expect(found.has('app-other-group')).to.equal(false);
    const lists = primary.contract.requests.filter((r) => r.path === '/api/v2/secrets');
    // 225 matches at 200 a page: two pages, narrowed on the server by group and labels.
    expect(lists.map((r) => r.query.offset)).to.deep.equal(['0', '200']);
    expect(lists[0]?.query).to.include({ groups: group, match_all_labels: 'env:prod', search: 'app-' });

    const byPattern = await c.find({ nameRegexp: '^app-4[0-4]9$' });
    expect([...byPattern.keys()].sort()).to.deep.equal(['app-409', 'app-419', 'app-429', 'app-439', 'app-449']);

    primary.contract.requests.length = 0;
    const tooMany = await rejectionOf(c.find({ prefix: 'app-' }, { maxEntries: 100 }));
    expect(tooMany).to.be.instanceOf(LimitError);
    expect((tooMany as LimitError).reason).to.equal('TooManyEntries');
    // It stopped listing at the first page and read no value.
    expect(primary.contract.requests.map((r) => r.path)).to.deep.equal(['/api/v2/secrets']);
  });

  it('rotation writes a new version once per request token (the token is kept in version_custom_metadata)', async () => {
    const a = await admin(primary, iam);
    const id = await a.create({ secret_type: 'arbitrary', name: 'rotated', payload: 'old' });
    const kv = await a.create({ secret_type: 'kv', name: 'kv-rotated', data: { user: 'app', password: 'old' } });
    const up = await a.create({ secret_type: 'username_password', name: 'up', username: 'app', password: 'old' });
    const c = await connect();
    const put = c.putValue?.bind(c);
    if (!put) throw new Error('putValue missing');
    const token = randomUUID();
    const first = await put({ key: id }, 'new', { requestToken: token });
    // A retry with the same token (an answer lost, a crash) writes nothing and answers the same version.
    const retry = await put({ key: id }, 'new-retry', { requestToken: token });
    expect(retry.version).to.equal(first.version);
    const versions = primary.contract.versionsOf(id);
    expect(versions).to.have.length(2);
    expect(versions[1]?.version_custom_metadata).to.deep.equal({ [TOKEN_FIELD]: token });
    expect(await c.getValue({ key: id })).to.equal('new');
    expect(await c.getValue({ key: id, version: 'previous' })).to.equal('old');

    await put({ key: 'default/kv/kv-rotated', property: 'password' }, 'new', { requestToken: randomUUID() });
    expect(await c.getProperties(kv)).to.deep.equal({ user: 'app', password: 'new' });
    await put({ key: up, property: 'password' }, 'new', { requestToken: randomUUID() });
    expect(await c.getProperties(up)).to.deep.equal({ username: 'app', password: 'new' });

    // A secret named by group, type and name that is not there yet is created, once.
    const createToken = randomUUID();
    await put({ key: 'default/arbitrary/fresh' }, 'born', { requestToken: createToken });
    await put({ key: 'default/arbitrary/fresh' }, 'born-again', { requestToken: createToken });
    expect(await c.getValue({ key: 'default/arbitrary/fresh' })).to.equal('born');
    const fresh = (await a.call('GET', '/api/v2/secret_groups/default/secret_types/arbitrary/secrets/fresh')).body;
    expect(fresh.versions_total).to.equal(1);

    // Types IBM rotates itself are not written.
    const cert = await a.create({ secret_type: 'imported_cert', name: 'cert', certificate: CERT, private_key: KEY });
    const refused = await rejectionOf(put({ key: cert }, 'x', { requestToken: randomUUID() }));
    expect(String((refused as Error).message)).to.include('rotates those itself');
  });

  it('picks up a version the service made itself (auto-rotation) without writing', async () => {
    const a = await admin(primary, iam);
    const id = await a.create({ secret_type: 'iam_credentials', name: 'auto', api_key: 'key-1' });
    const c = await connect();
    expect(await c.getValue({ key: id })).to.equal('key-1');
    primary.contract.rotateByService(id, { api_key: 'key-2' });
    expect(await c.getValue({ key: id })).to.equal('key-2');
    expect(primary.contract.requests.filter((r) => r.method === 'POST')).to.have.length(1); // only the admin's create
  });

  it('moves reads to the secondary instance while the primary is down, and back; writes wait for the primary', async () => {
    for (const server of [primary, secondary]) {
      const a = await admin(server, iam);
      await a.create({ secret_type: 'arbitrary', name: 'replicated', payload: 'same' });
    }
    const c = await connect({
      region: 'us-south',
      failover: [{ serviceUrl: secondary.serviceUrl, region: 'eu-de' }],
      circuitBreaker: { failureThreshold: 1, openSeconds: 1 },
    });
    const key = 'default/arbitrary/replicated';
    expect(await c.getValue({ key })).to.equal('same');
    expect(c.servedRegion?.()).to.deep.equal({ region: 'us-south', primary: true });

    await primary.kill();
    try {
      expect(await c.getValue({ key })).to.equal('same');
      expect(c.servedRegion?.()).to.deep.equal({ region: 'eu-de', primary: false });
      expect(ctx.moves.map((m) => [m.from, m.to, m.toPrimary])).to.deep.equal([['us-south', 'eu-de', false]]);
      const write = await rejectionOf(c.putValue?.({ key }, 'x', { requestToken: randomUUID() }) ?? Promise.resolve());
      expect(write).to.be.instanceOf(IbmUnavailableError);
      expect(String((write as Error).message)).to.match(
        /writes go only to the primary instance .* which is unavailable/,
      );
    } finally {
      await primary.restart();
    }
    // After openSeconds the primary's circuit lets a probe through; it answers and serves again.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await c.getValue({ key })).to.equal('same');
    expect(c.servedRegion?.()).to.deep.equal({ region: 'us-south', primary: true });
    expect(ctx.moves.at(-1)).to.include({ from: 'eu-de', to: 'us-south', toPrimary: true });
    expect(ibmSecretsManagerProvider.stats?.().circuits?.some((s) => s.region === 'eu-de')).to.equal(true);
  });

  it('401 and 403 are configuration errors that never fail over; 404 is KeyNotFoundError', async () => {
    const a = await admin(primary, iam);
    const id = await a.create({ secret_type: 'arbitrary', name: 'guarded', payload: 'x' });
    // A secondary that holds the secret: a 403 at the primary must not be answered from it.
    await (await admin(secondary, iam)).create({ secret_type: 'arbitrary', name: 'guarded', payload: 'x' });
    const c = await connect({ region: 'us-south', failover: [{ serviceUrl: secondary.serviceUrl }] });
    secondary.contract.requests.length = 0;
    primary.contract.deny('iam-ServiceId-secretsync');
    const denied = await rejectionOf(c.getValue({ key: id }));
    expect(denied).to.be.instanceOf(ProviderConfigError);
    expect((denied as ProviderConfigError).reason).to.equal('PermissionDenied');
    expect((denied as ProviderConfigError).clientUnusable).to.equal(false);
    expect(denied.message).to.include('HTTP 403');
    expect(secondary.contract.requests.filter((r) => r.iamId === 'iam-ServiceId-secretsync')).to.have.length(0);
    primary.contract.deny('iam-ServiceId-secretsync', false);

    // A token the instance does not accept (another IAM): 401, and the next call logs in again.
    const stranger = await IbmSecretsManagerServer.start();
    try {
      stranger.contract.addApiKey(API_KEY);
      const other = await ibmSecretsManagerProvider.connect(
        clusterStore({ serviceUrl: primary.serviceUrl, iamEndpoint: stranger.iamEndpoint, auth: apiKeyAuth }),
        memoryContext(),
      );
      const unauthorized = await rejectionOf(other.getValue({ key: id }));
      expect(unauthorized).to.be.instanceOf(IbmUnauthorizedError);
      expect(unauthorized).to.be.instanceOf(ProviderConfigError);
      // Refused with a token exchanged for this very call: AuthenticationFailed at once, no second try.
      expect((unauthorized as ProviderConfigError).reason).to.equal('AuthenticationFailed');
      await rejectionOf(other.getValue({ key: id }));
      expect(stranger.contract.requests.filter((r) => r.path === '/identity/token')).to.have.length(2);
    } finally {
      await stranger.stop();
    }

    // An API key IAM does not know: a login failure a person must fix.
    iam.contract.addApiKey('other-key');
    const badKey = await ibmSecretsManagerProvider.connect(
      clusterStore({ serviceUrl: primary.serviceUrl, iamEndpoint: iam.iamEndpoint, auth: apiKeyAuth }),
      { ...memoryContext(), readSecretKey: async () => Buffer.from('unknown-key') },
    );
    const login = await rejectionOf(badKey.check());
    expect(login).to.be.instanceOf(ProviderConfigError);
    expect((login as ProviderConfigError).reason).to.equal('AuthenticationFailed');
    expect(login.message).to.include('IAM login failed');
    expect(String((login as Error).message)).to.not.include('unknown-key');
  });

  it('a cached IAM token the instance refuses (revoked) is exchanged once more and the call succeeds', async () => {
    const a = await admin(primary, iam);
    const id = await a.create({ secret_type: 'arbitrary', name: 'revoked', payload: 'still-readable' });
    const c = await connect();
    expect(await c.getValue({ key: id })).to.equal('still-readable');
    const logins = () => iam.contract.requests.filter((r) => r.path === '/identity/token').length;
    const before = logins();
    primary.contract.requests.length = 0;
    primary.contract.revokeTokens();
    expect(await c.getValue({ key: id })).to.equal('still-readable');
    expect(logins() - before).to.equal(1);
    expect(primary.contract.requests.map((r) => r.status)).to.deep.equal([401, 200]);
    // A fresh token refused as well is AuthenticationFailed, after exactly one more exchange.
    primary.contract.requests.length = 0;
    const stranger = await IbmSecretsManagerServer.start();
    try {
      stranger.contract.addApiKey(API_KEY);
      const other = await ibmSecretsManagerProvider.connect(
        clusterStore({ serviceUrl: primary.serviceUrl, iamEndpoint: stranger.iamEndpoint, auth: apiKeyAuth }),
        memoryContext(),
      );
      const failed = await rejectionOf(other.getValue({ key: id }));
      expect((failed as ProviderConfigError).reason).to.equal('AuthenticationFailed');
      expect(primary.contract.requests.map((r) => r.status)).to.deep.equal([401]);
    } finally {
      await stranger.stop();
    }
  });

  it('429 waits for Retry-After and tries again; throttling that lasts is an availability error with retryAfterMs', async () => {
    const a = await admin(primary, iam);
    const id = await a.create({ secret_type: 'arbitrary', name: 'throttled', payload: 'x' });
    const c = await connect();
    primary.contract.requests.length = 0;
    primary.contract.inject({ status: 429, times: 1, headers: { 'retry-after': '1' } });
    const started = Date.now();
    expect(await c.getValue({ key: id })).to.equal('x');
    expect(Date.now() - started).to.be.at.least(950);
    expect(primary.contract.requests.map((r) => r.status)).to.deep.equal([429, 200]);

    primary.contract.inject({ status: 429, times: 3, headers: { 'retry-after': '0' } });
    const throttled = await rejectionOf(c.getValue({ key: id }));
    expect(throttled).to.be.instanceOf(IbmUnavailableError);
    expect((throttled as IbmUnavailableError).retryAfterMs).to.equal(0);
  });

  it('exchanges the IAM token again before it expires, so no call meets an expired token', async () => {
    const shortIam = await IbmSecretsManagerServer.start({ signingKey: iam.signingKey, tokenLifetimeSeconds: 62 });
    try {
      shortIam.contract.addApiKey(API_KEY, 'iam-ServiceId-secretsync');
      const a = await admin(primary, iam);
      const id = await a.create({ secret_type: 'arbitrary', name: 'fresh-token', payload: 'x' });
      // A 62 s token is refreshed a minute early: 2 s after the login.
      const c = await connect({ iamEndpoint: shortIam.iamEndpoint });
      const logins = () => shortIam.contract.requests.filter((r) => r.path === '/identity/token').length;
      await c.getValue({ key: id });
      await c.getValue({ key: id });
      expect(logins()).to.equal(1);
      await new Promise((r) => setTimeout(r, 2100));
      await c.getValue({ key: id });
      expect(logins()).to.equal(2);
      expect(primary.contract.requests.filter((r) => r.status === 401)).to.have.length(0);
      // IAM down during an early refresh: the token in hand is used until it expires; the instance is not blamed.
      await new Promise((r) => setTimeout(r, 2100));
      await shortIam.kill();
      expect(await c.getValue({ key: id })).to.equal('x');
      expect(logins()).to.equal(2);
    } finally {
      await shortIam.stop();
    }
  });

  it("every call has a deadline and stops at the caller's signal", async () => {
    const a = await admin(primary, iam);
    const id = await a.create({ secret_type: 'arbitrary', name: 'slow', payload: 'x' });
    const c = await connect();
    await c.getValue({ key: id });
    // The caller gives up after 200 ms: the call ends then, as a deadline, not a backend failure.
    primary.contract.inject({ status: 0, times: 1, delayMs: 1500 });
    const started = Date.now();
    const aborted = await rejectionOf(c.getValue({ key: id }, { signal: AbortSignal.timeout(200) }));
    expect(Date.now() - started).to.be.below(1000);
    expect((aborted as { reason?: string }).reason).to.equal('DeadlineExceeded');
    // An instance that does not answer within the request deadline (3 s here) is unavailable.
    primary.contract.inject({ status: 0, times: 3, delayMs: 3500 });
    const hung = await rejectionOf(c.getValue({ key: id }));
    expect(hung).to.be.instanceOf(IbmUnavailableError);
    expect(hung.message).to.include('no answer within 3000 ms');
  });

  it('a namespaced store needs its own credentials, and an endpoint the admin allows', async () => {
    const namespaced = (spec: IbmSecretsManagerProviderSpec): SecretStore => ({
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretStore',
      metadata: { name: 'ibm', namespace: 'team' },
      spec: { provider: { ibmSecretsManager: spec } },
    });
    const noAuth = await rejectionOf(
      ibmSecretsManagerProvider.connect(
        namespaced({ serviceUrl: primary.serviceUrl, iamEndpoint: iam.iamEndpoint }),
        memoryContext('team', [primary.serviceUrl, iam.iamEndpoint]),
      ),
    );
    expect(noAuth).to.be.instanceOf(ProviderConfigError);
    expect(noAuth.message).to.include("may not use the operator's identity");
    const notAllowed = await rejectionOf(
      ibmSecretsManagerProvider.connect(
        namespaced({
          serviceUrl: primary.serviceUrl,
          iamEndpoint: iam.iamEndpoint,
          auth: { apiKeySecretRef: { name: 'ibm', key: 'apikey' } },
        }),
        memoryContext('team', [primary.serviceUrl]),
      ),
    );
    expect(notAllowed).to.be.instanceOf(StorePolicyError);
    expect(String((notAllowed as Error).message)).to.include('iamEndpoint');
  });
});
