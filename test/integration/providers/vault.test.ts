// The vault provider against a real Vault server (dev mode, from the binary
// tools/build-vault-testenv.sh builds): token and AppRole logins, renewal and
// re-login, KV v1 and v2 (properties, versions, extract, find), rotation
// write-back with check-and-set (two writers, a crash and a resume), TLS with
// a CA from a Secret, failover to a second address and back, a sealed server,
// a 403 that is a policy and not a token problem.
import { expect } from 'chai';
import { LimitError, SpecError } from '../../../src/api/errors.js';
import type { ClusterSecretStore, SecretStore, VaultProviderSpec } from '../../../src/api/types.js';
import {
  KeyNotFoundError,
  ProviderConfigError,
  StorePolicyError,
  type ProviderClient,
  type ProviderContext,
} from '../../../src/providers/provider.js';
import { VaultPermissionError, VaultSealedError } from '../../../src/providers/vault/errors.js';
import { VaultProviderClient, vaultProvider } from '../../../src/providers/vault/index.js';
import { VersionNotFoundError } from '../../../src/providers/vault/kv.js';
import { TcpFaultProxy } from '../../../tools/testenv/proxy.js';
import { rejectionOf } from '../../unit/helpers/index.js';
import { VaultServer } from '../../../tools/testenv/index.js';

interface TestContext extends ProviderContext {
  operations: string[];
  count(op: string): number;
  secrets: Record<string, Record<string, string>>;
}

/** A provider context over in-memory Secrets and ConfigMaps that counts Vault operations. */
function testContext(allowedEndpoints: string[] = [], storeNamespace?: string): TestContext {
  const operations: string[] = [];
  const secrets: Record<string, Record<string, string>> = {};
  return {
    operations,
    secrets,
    count: (op) => operations.filter((o) => o === op).length,
    storeNamespace,
    allowOperatorIdentityForNamespacedStores: false,
    policy: { allowedEndpoints, localStoreRoot: undefined },
    timeouts: { connectMs: 1000, requestMs: 5000 },
    observe: (operation, call) => {
      operations.push(operation);
      return call();
    },
    requestServiceAccountToken: () => Promise.reject(new Error('no ServiceAccounts here')),
    readSecretKey(namespace, name, key) {
      const value = secrets[`${namespace}/${name}`]?.[key];
      if (value === undefined)
        return Promise.reject(new ProviderConfigError(`Secret ${namespace}/${name} has no key "${key}"`));
      return Promise.resolve(Buffer.from(value));
    },
    readConfigMapKey(namespace, name, key) {
      const value = secrets[`configmap:${namespace}/${name}`]?.[key];
      if (value === undefined)
        return Promise.reject(new ProviderConfigError(`ConfigMap ${namespace}/${name} has no key "${key}"`));
      return Promise.resolve(value);
    },
  };
}

let storeSeq = 0;
function clusterStore(spec: VaultProviderSpec): ClusterSecretStore {
  storeSeq += 1;
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'ClusterSecretStore',
    metadata: { name: `vault-${storeSeq}-${Date.now().toString(36)}` },
    spec: { provider: { vault: spec } },
  };
}

function namespacedStore(spec: VaultProviderSpec, namespace = 'team-a'): SecretStore {
  storeSeq += 1;
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name: `vault-${storeSeq}`, namespace },
    spec: { provider: { vault: spec } },
  };
}

describe('vault provider (real Vault server)', function () {
  this.timeout(120_000);
  let vault: VaultServer;
  const clients: ProviderClient[] = [];

  /** A token store on `vault` (root token in a Secret) plus `spec`. */
  async function connect(
    spec: Partial<VaultProviderSpec> = {},
    ctx: TestContext = testContext(),
    token = vault.rootToken,
  ): Promise<{ client: VaultProviderClient; ctx: TestContext }> {
    ctx.secrets['ops/vault-token'] = { token };
    const store = clusterStore({
      server: vault.address,
      auth: { tokenSecretRef: { name: 'vault-token', key: 'token', namespace: 'ops' } },
      ...spec,
    });
    const client = (await vaultProvider.connect(store, ctx)) as VaultProviderClient;
    clients.push(client);
    return { client, ctx };
  }

  before(async () => {
    vault = await VaultServer.start();
  });

  after(async () => {
    await vault?.stop();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  describe('KV v2 (the dev server’s secret/ mount)', () => {
    it('reads a property, a single-field entry, the whole entry, all properties; missing paths are KeyNotFound', async () => {
      await vault.must('POST', 'secret/data/app/db', { data: { username: 'app', password: 's3cret', port: 5432 } });
      await vault.must('POST', 'secret/data/app/token', { data: { token: 'tok-123' } });
      const { client, ctx } = await connect();
      expect(await client.getValue({ key: 'app/db', property: 'password' })).to.equal('s3cret');
      expect(await client.getValue({ key: 'app/db', property: 'port' })).to.equal('5432');
      expect(JSON.parse(await client.getValue({ key: 'app/db' }))).to.deep.equal({
        username: 'app',
        password: 's3cret',
        port: 5432,
      });
      expect(await client.getValue({ key: 'app/token' })).to.equal('tok-123');
      expect(await client.getProperties('app/db')).to.deep.equal({ username: 'app', password: 's3cret', port: '5432' });
      const missing = await rejectionOf(client.getValue({ key: 'app/nope' }));
      expect(missing).to.be.instanceOf(KeyNotFoundError);
      expect(missing.message).to.contain('app/nope');
      const noProperty = await rejectionOf(client.getValue({ key: 'app/db', property: 'nope' }));
      expect(noProperty).to.be.instanceOf(KeyNotFoundError);
      expect(noProperty.message).to.not.contain('s3cret');
      expect(ctx.count('kv.read')).to.equal(7);
    });

    it('pins versions: an old version, a version that never existed and a deleted one (VersionNotFound)', async () => {
      await vault.must('POST', 'secret/data/pinned', { data: { v: 'one' } });
      await vault.must('POST', 'secret/data/pinned', { data: { v: 'two' } });
      await vault.must('POST', 'secret/data/pinned', { data: { v: 'three' } });
      const { client } = await connect();
      expect(await client.getValue({ key: 'pinned', version: '1' })).to.equal('one');
      expect(await client.getValue({ key: 'pinned' })).to.equal('three');
      expect(await client.getProperties('pinned', '2')).to.deep.equal({ v: 'two' });

      const never = await rejectionOf(client.getValue({ key: 'pinned', version: '9' }));
      expect(never).to.be.instanceOf(VersionNotFoundError);
      expect((never as VersionNotFoundError).reason).to.equal('VersionNotFound');
      expect(never).to.not.be.instanceOf(KeyNotFoundError);

      await vault.must('POST', 'secret/delete/pinned', { versions: [2] });
      const deleted = await rejectionOf(client.getValue({ key: 'pinned', version: '2' }));
      expect(deleted).to.be.instanceOf(VersionNotFoundError);
      expect(deleted.message).to.contain('deleted');

      const noPath = await rejectionOf(client.getValue({ key: 'never-written', version: '1' }));
      expect(noPath).to.be.instanceOf(KeyNotFoundError);

      const bad = await rejectionOf(client.getValue({ key: 'pinned', version: 'AWSCURRENT' }));
      expect(bad).to.be.instanceOf(SpecError);
    });

    it('finds by prefix (recursively) and by RE2 pattern on the full path, bounded by maxEntries', async () => {
      for (const path of ['find/a', 'find/b', 'find/deep/c', 'find/deep/deeper/d', 'findx/e', 'other/f']) {
        await vault.must('POST', `secret/data/${path}`, { data: { name: path } });
      }
      const { client } = await connect();
      const byPrefix = await client.find({ prefix: 'find/' });
      expect([...byPrefix.keys()].sort()).to.deep.equal(['find/a', 'find/b', 'find/deep/c', 'find/deep/deeper/d']);
      expect(byPrefix.get('find/deep/c')).to.deep.equal({ name: 'find/deep/c' });
      // A prefix that is not a directory: names that start with it, in the parent directory and below.
      expect([...(await client.find({ prefix: 'find' })).keys()].sort()).to.deep.equal([
        'find/a',
        'find/b',
        'find/deep/c',
        'find/deep/deeper/d',
        'findx/e',
      ]);
      const byPattern = await client.find({ nameRegexp: '^find/deep/.*[cd]$' });
      expect([...byPattern.keys()].sort()).to.deep.equal(['find/deep/c', 'find/deep/deeper/d']);
      const tooMany = await rejectionOf(client.find({ prefix: 'find/' }, { maxEntries: 3 }));
      expect(tooMany).to.be.instanceOf(LimitError);
      expect((tooMany as LimitError).reason).to.equal('TooManyEntries');
      const tags = await rejectionOf(client.find({ prefix: 'find/', tags: { a: 'b' } }));
      expect(tags).to.be.instanceOf(SpecError);
      expect(await client.find({ prefix: 'nothing-here/' })).to.have.property('size', 0);
    });
  });

  describe('KV v1 at a custom mount', () => {
    before(async () => {
      await vault.must('POST', 'sys/mounts/kv1', { type: 'kv', options: { version: '1' } });
      await vault.must('POST', 'kv1/team/db', { password: 'v1-pass', user: 'u' });
      await vault.must('POST', 'kv1/team/sub/x', { only: 'one' });
    });

    it('reads, extracts and finds; refuses versions and rotation writes', async () => {
      const { client } = await connect({ path: 'kv1', version: 'v1' });
      expect(await client.getValue({ key: 'team/db', property: 'password' })).to.equal('v1-pass');
      expect(await client.getValue({ key: 'team/sub/x' })).to.equal('one');
      expect(await client.getProperties('team/db')).to.deep.equal({ password: 'v1-pass', user: 'u' });
      expect([...(await client.find({ prefix: 'team/' })).keys()].sort()).to.deep.equal(['team/db', 'team/sub/x']);
      expect(await rejectionOf(client.getValue({ key: 'team/db', version: '1' }))).to.be.instanceOf(SpecError);
      expect(
        await rejectionOf(
          client.putValue({ key: 'team/db' }, 'x', { requestToken: '00000000-0000-0000-0000-000000000001' }),
        ),
      ).to.be.instanceOf(SpecError);
      expect(await rejectionOf(client.getValue({ key: 'team/none' }))).to.be.instanceOf(KeyNotFoundError);
    });
  });

  describe('auth', () => {
    it('logs in with AppRole (role id inline or from a Secret, secret id from a Secret)', async () => {
      await vault.api('POST', 'sys/auth/approle', { type: 'approle' });
      await vault.must('PUT', 'sys/policies/acl/read-app', {
        policy: 'path "secret/data/app/*" { capabilities = ["read"] }',
      });
      await vault.must('POST', 'auth/approle/role/reader', { token_policies: ['read-app'], token_ttl: '1h' });
      await vault.must('POST', 'secret/data/app/approle', { data: { v: 'via-approle' } });
      const roleId = (await vault.must<{ data: { role_id: string } }>('GET', 'auth/approle/role/reader/role-id')).data
        .role_id;
      const secretId = (await vault.must<{ data: { secret_id: string } }>('POST', 'auth/approle/role/reader/secret-id'))
        .data.secret_id;
      for (const inline of [true, false]) {
        const ctx = testContext();
        ctx.secrets['ops/approle'] = { 'secret-id': secretId, 'role-id': roleId };
        const store = clusterStore({
          server: vault.address,
          auth: {
            appRole: {
              ...(inline ? { roleId } : { roleIdSecretRef: { name: 'approle', key: 'role-id', namespace: 'ops' } }),
              secretIdSecretRef: { name: 'approle', key: 'secret-id', namespace: 'ops' },
            },
          },
        });
        const client = await vaultProvider.connect(store, ctx);
        clients.push(client);
        expect(await client.getValue({ key: 'app/approle' })).to.equal('via-approle');
        await client.check();
        expect(ctx.count('auth.login')).to.equal(1);
        // The policy allows app/* only: a 403 elsewhere is PermissionDenied, with no second login.
        const denied = await rejectionOf(client.getValue({ key: 'other/x' }));
        expect(denied).to.be.instanceOf(VaultPermissionError);
        expect((denied as VaultPermissionError).reason).to.equal('PermissionDenied');
        expect(ctx.count('auth.login')).to.equal(1);
      }
      // A wrong secret id: a configuration error that names the login, never the secret id.
      const ctx = testContext();
      ctx.secrets['ops/approle'] = { 'secret-id': 'not-the-secret-id' };
      const bad = await vaultProvider.connect(
        clusterStore({
          server: vault.address,
          auth: { appRole: { roleId, secretIdSecretRef: { name: 'approle', key: 'secret-id', namespace: 'ops' } } },
        }),
        ctx,
      );
      clients.push(bad);
      const refused = await rejectionOf(bad.getValue({ key: 'app/approle' }));
      expect(refused).to.be.instanceOf(ProviderConfigError);
      expect(refused.message).to.contain('AppRole login').and.not.contain('not-the-secret-id');
    });

    it('keeps the token across client rebuilds of the same store, and logs in anew after the store is forgotten', async () => {
      await vault.api('POST', 'sys/auth/approle', { type: 'approle' });
      await vault.must('PUT', 'sys/policies/acl/read-app', {
        policy: 'path "secret/data/app/*" { capabilities = ["read"] }',
      });
      await vault.must('POST', 'auth/approle/role/reader', { token_policies: ['read-app'], token_ttl: '1h' });
      await vault.must('POST', 'secret/data/app/rebuilt', { data: { v: 'same-token' } });
      const roleId = (await vault.must<{ data: { role_id: string } }>('GET', 'auth/approle/role/reader/role-id')).data
        .role_id;
      const secretId = (await vault.must<{ data: { secret_id: string } }>('POST', 'auth/approle/role/reader/secret-id'))
        .data.secret_id;
      const store = clusterStore({
        server: vault.address,
        auth: { appRole: { roleId, secretIdSecretRef: { name: 'approle', key: 'secret-id', namespace: 'ops' } } },
      });
      const logins = () => ctxs.reduce((n, c) => n + c.count('auth.login'), 0);
      const ctxs: TestContext[] = [];
      for (let i = 0; i < 3; i++) {
        const ctx = testContext();
        ctx.secrets['ops/approle'] = { 'secret-id': secretId };
        ctxs.push(ctx);
        const client = await vaultProvider.connect(store, ctx);
        clients.push(client);
        expect(await client.getValue({ key: 'app/rebuilt' })).to.equal('same-token');
      }
      expect(logins()).to.equal(1);
      vaultProvider.forgetStore?.(store);
      const ctx = testContext();
      ctx.secrets['ops/approle'] = { 'secret-id': secretId };
      ctxs.push(ctx);
      const fresh = await vaultProvider.connect(store, ctx);
      clients.push(fresh);
      await fresh.check();
      expect(logins()).to.equal(2);
    });

    it('renews a short-lived token at about 2/3 of its TTL, and re-reads a revoked token’s Secret', async () => {
      await vault.must('PUT', 'sys/policies/acl/read-all', {
        policy: 'path "secret/*" { capabilities = ["read", "list"] }',
      });
      await vault.must('POST', 'secret/data/renew/me', { data: { v: 'still-here' } });
      const created = await vault.must<{ auth: { client_token: string } }>('POST', 'auth/token/create', {
        policies: ['read-all'],
        ttl: '6s',
        explicit_max_ttl: '60s',
        renewable: true,
      });
      const { client, ctx } = await connect({}, testContext(), created.auth.client_token);
      expect(await client.getValue({ key: 'renew/me' })).to.equal('still-here');
      // Past 2/3 of 6 s: the next request renews first.
      await new Promise((r) => setTimeout(r, 4500));
      expect(await client.getValue({ key: 'renew/me' })).to.equal('still-here');
      expect(ctx.count('token.renew')).to.equal(1);
      // Past the token's first TTL: it still works because it was renewed.
      await new Promise((r) => setTimeout(r, 2500));
      expect(await client.getValue({ key: 'renew/me' })).to.equal('still-here');
      const lookup = await vault.must<{ data: { ttl: number } }>('POST', 'auth/token/lookup', {
        token: created.auth.client_token,
      });
      expect(lookup.data.ttl).to.be.greaterThan(0);

      // Revoked: the next request is refused, lookup-self says the token is gone, the Secret is read again.
      const second = await vault.must<{ auth: { client_token: string } }>('POST', 'auth/token/create', {
        policies: ['read-all'],
        ttl: '1h',
      });
      await vault.must('POST', 'auth/token/revoke', { token: created.auth.client_token });
      ctx.secrets['ops/vault-token'] = { token: second.auth.client_token };
      const logins = ctx.count('token.lookup');
      expect(await client.getValue({ key: 'renew/me' })).to.equal('still-here');
      // lookup-self of the revoked token (refused), then the login's lookup of the new one.
      expect(ctx.count('token.lookup') - logins).to.equal(2);
    });
  });

  describe('rotation write-back (KV v2 check-and-set)', () => {
    const token = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    const currentVersion = async (path: string) =>
      (await vault.must<{ data: { current_version: number } }>('GET', `secret/metadata/${path}`)).data.current_version;

    it('writes one version per token: a retry returns it, a property is laid over the other fields', async () => {
      await vault.must('POST', 'secret/data/rot/a', { data: { user: 'app', password: 'old' } });
      const { client } = await connect();
      const first = await client.putValue({ key: 'rot/a', property: 'password' }, 'new-1', { requestToken: token(1) });
      expect(first.version).to.equal('2');
      expect(await client.getProperties('rot/a')).to.deep.equal({ user: 'app', password: 'new-1' });
      // The same token again (the answer was lost): nothing written.
      const again = await client.putValue({ key: 'rot/a', property: 'password' }, 'new-other', {
        requestToken: token(1),
      });
      expect(again.version).to.equal('2');
      expect(await currentVersion('rot/a')).to.equal(2);
      expect(await client.getValue({ key: 'rot/a', property: 'password' })).to.equal('new-1');
      // A new token: a new version. A missing entry is created (check-and-set 0).
      expect(
        (await client.putValue({ key: 'rot/a' }, { password: 'new-2' }, { requestToken: token(2) })).version,
      ).to.equal('3');
      expect((await client.putValue({ key: 'rot/new' }, 'plain', { requestToken: token(3) })).version).to.equal('1');
      expect(await client.getProperties('rot/new')).to.deep.equal({ value: 'plain' });
    });

    it('keeps only the newest rotation records in custom_metadata, and leaves other keys alone', async () => {
      await vault.must('POST', 'secret/data/rot/many', { data: { password: 'v1' } });
      await vault.must('POST', 'secret/metadata/rot/many', { custom_metadata: { owner: 'team-a' } });
      const { client } = await connect();
      for (let i = 0; i < 12; i++)
        await client.putValue({ key: 'rot/many' }, { password: `v${i + 2}` }, { requestToken: token(100 + i) });
      expect(await currentVersion('rot/many')).to.equal(13);
      const custom = (
        await vault.must<{ data: { custom_metadata: Record<string, string> } }>('GET', 'secret/metadata/rot/many')
      ).data.custom_metadata;
      const records = Object.keys(custom).filter((k) => k.startsWith('secretsync-rotation-'));
      expect(records).to.have.length(8);
      // The newest is there (a retry of the latest rotation still finds it); the oldest are gone.
      expect(custom[`secretsync-rotation-${token(111)}`]).to.equal('base=12');
      expect(custom[`secretsync-rotation-${token(100)}`]).to.equal(undefined);
      expect(custom.owner).to.equal('team-a');
    });

    it('resumes after a crash between the record and the write, and between the write and the answer', async () => {
      await vault.must('POST', 'secret/data/rot/crash', { data: { password: 'v1' } });
      const { client } = await connect();
      // Crash 1: the record (base 1) is there, the write never happened.
      await vault
        .must('PATCH', 'secret/metadata/rot/crash', {
          custom_metadata: { [`secretsync-rotation-${token(10)}`]: 'base=1' },
        })
        .catch(async () => {
          // Older servers: POST replaces custom_metadata as a whole (there is nothing else in it here).
          await vault.must('POST', 'secret/metadata/rot/crash', {
            custom_metadata: { [`secretsync-rotation-${token(10)}`]: 'base=1' },
          });
        });
      expect(
        (await client.putValue({ key: 'rot/crash' }, { password: 'v2' }, { requestToken: token(10) })).version,
      ).to.equal('2');
      // Crash 2: the write landed and the answer was lost; the retry finds it and writes nothing.
      expect(
        (await client.putValue({ key: 'rot/crash' }, { password: 'v2-retry' }, { requestToken: token(10) })).version,
      ).to.equal('2');
      expect(await currentVersion('rot/crash')).to.equal(2);
      expect(await client.getValue({ key: 'rot/crash' })).to.equal('v2');
    });

    it('lets exactly one of two concurrent writers win; the other, retried, reports that one version', async () => {
      await vault.must('POST', 'secret/data/rot/race', { data: { password: 'v1' } });
      const a = (await connect()).client;
      const b = (await connect()).client;
      const results = await Promise.allSettled([
        a.putValue({ key: 'rot/race' }, { password: 'from-a' }, { requestToken: token(20) }),
        b.putValue({ key: 'rot/race' }, { password: 'from-b' }, { requestToken: token(21) }),
      ]);
      expect(await currentVersion('rot/race')).to.equal(2);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).to.have.length(1);
      expect(lost).to.have.length(1);
      // The loser retries with its token (as the rotation does): no second version.
      const loserToken = results[0]?.status === 'rejected' ? token(20) : token(21);
      const loser = results[0]?.status === 'rejected' ? a : b;
      expect(
        (await loser.putValue({ key: 'rot/race' }, { password: 'late' }, { requestToken: loserToken })).version,
      ).to.equal('2');
      expect(await currentVersion('rot/race')).to.equal(2);
    });
  });

  describe('store policy', () => {
    it('refuses a namespaced store whose server or failover is not in --allowed-endpoints', async () => {
      const spec: VaultProviderSpec = {
        server: vault.address,
        failover: ['http://127.0.0.1:1'],
        auth: { tokenSecretRef: { name: 't', key: 'token' } },
      };
      const refused = await rejectionOf(
        vaultProvider.validateStore(namespacedStore(spec), {
          allowedEndpoints: [vault.address],
          localStoreRoot: undefined,
        }),
      );
      expect(refused).to.be.instanceOf(StorePolicyError);
      expect(refused.message).to.contain('spec.provider.vault.failover[0]');
      const noServer = await rejectionOf(
        vaultProvider.validateStore(namespacedStore(spec), { allowedEndpoints: [], localStoreRoot: undefined }),
      );
      expect(noServer.message).to.contain('spec.provider.vault.server');
      await vaultProvider.validateStore(namespacedStore(spec), {
        allowedEndpoints: [vault.address, 'http://127.0.0.1:1'],
        localStoreRoot: undefined,
      });
      // A ClusterSecretStore is the admin's: not limited.
      await vaultProvider.validateStore(clusterStore(spec), { allowedEndpoints: [], localStoreRoot: undefined });
    });
  });

  describe('health', () => {
    it('reports a sealed Vault as VaultSealed (check and reads) and recovers on unseal', async () => {
      const own = await VaultServer.start();
      try {
        const ctx = testContext();
        ctx.secrets['ops/vault-token'] = { token: own.rootToken };
        await own.must('POST', 'secret/data/s', { data: { v: 'x' } });
        const client = await vaultProvider.connect(
          clusterStore({
            server: own.address,
            auth: { tokenSecretRef: { name: 'vault-token', key: 'token', namespace: 'ops' } },
          }),
          ctx,
        );
        clients.push(client);
        await client.check();
        await own.seal();
        const check = await rejectionOf(client.check());
        expect(check).to.be.instanceOf(VaultSealedError);
        const read = await rejectionOf(client.getValue({ key: 's' }));
        expect(read).to.be.instanceOf(VaultSealedError);
        expect((read as VaultSealedError).reason).to.equal('VaultSealed');
        await own.unseal();
        await client.check();
        expect(await client.getValue({ key: 's' })).to.equal('x');
      } finally {
        await own.stop();
      }
    });
  });

  describe('TLS', () => {
    it('trusts Vault through a CA from a Secret or a ConfigMap, and fails closed without it', async () => {
      const secure = await VaultServer.start({ tls: true });
      try {
        await secure.must('POST', 'secret/data/tls', { data: { v: 'over-tls' } });
        for (const type of ['Secret', 'ConfigMap'] as const) {
          const ctx = testContext();
          ctx.secrets['ops/vault-token'] = { token: secure.rootToken };
          ctx.secrets[type === 'Secret' ? 'ops/vault-ca' : 'configmap:ops/vault-ca'] = { 'ca.crt': secure.caPem ?? '' };
          const client = await vaultProvider.connect(
            clusterStore({
              server: secure.address,
              auth: { tokenSecretRef: { name: 'vault-token', key: 'token', namespace: 'ops' } },
              tls: { caProvider: { type, name: 'vault-ca', key: 'ca.crt', namespace: 'ops' } },
            }),
            ctx,
          );
          clients.push(client);
          expect(await client.getValue({ key: 'tls' })).to.equal('over-tls');
        }
        const ctx = testContext();
        ctx.secrets['ops/vault-token'] = { token: secure.rootToken };
        const untrusted = await vaultProvider.connect(
          clusterStore({
            server: secure.address,
            auth: { tokenSecretRef: { name: 'vault-token', key: 'token', namespace: 'ops' } },
          }),
          ctx,
        );
        clients.push(untrusted);
        const refused = await rejectionOf(untrusted.getValue({ key: 'tls' }));
        expect(refused).to.be.instanceOf(ProviderConfigError);
        expect(refused.message).to.contain('TLS');
      } finally {
        await secure.stop();
      }
    });
  });

  describe('failover', () => {
    it('moves to the failover address when the primary is down, reports it, and comes back', async () => {
      // The primary is a proxy in front of `vault` that can be cut; the failover address is `vault` itself.
      const url = new URL(vault.address);
      const proxy = await TcpFaultProxy.start({ host: url.hostname, port: Number(url.port) });
      const primary = `http://127.0.0.1:${proxy.port}`;
      try {
        await vault.must('POST', 'secret/data/fo', { data: { v: 'same-data' } });
        const moves: string[] = [];
        const ctx = testContext();
        ctx.onFailover = (m) =>
          moves.push(`${m.fromEndpoint ?? '?'} -> ${m.toEndpoint ?? '?'}${m.toPrimary ? ' (primary)' : ''}`);
        ctx.timeouts = { connectMs: 300, requestMs: 600 };
        const { client } = await connect(
          { server: primary, failover: [vault.address], circuitBreaker: { failureThreshold: 1, openSeconds: 1 } },
          ctx,
        );
        expect(await client.getValue({ key: 'fo' })).to.equal('same-data');
        expect(client.servedRegion()).to.deep.equal({
          region: 'vault',
          endpoint: `127.0.0.1:${proxy.port}`,
          primary: true,
        });
        proxy.setMode('blackhole');
        expect(await client.getValue({ key: 'fo' })).to.equal('same-data');
        expect(client.servedRegion()).to.deep.equal({ region: 'vault', endpoint: url.host, primary: false });
        expect(moves).to.deep.equal([`127.0.0.1:${proxy.port} -> ${url.host}`]);
        // The primary comes back: after openSeconds a probe finds it and calls return to it.
        proxy.setMode('forward');
        await new Promise((r) => setTimeout(r, 1200));
        expect(await client.getValue({ key: 'fo' })).to.equal('same-data');
        expect(client.servedRegion()?.primary).to.equal(true);
        expect(moves[1]).to.equal(`${url.host} -> 127.0.0.1:${proxy.port} (primary)`);
        expect(vaultProvider.stats?.().circuits?.some((c) => c.provider === 'vault')).to.equal(true);
      } finally {
        await proxy.stop();
      }
    });
  });
});
