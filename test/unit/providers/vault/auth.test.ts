// Vault logins: what each auth method reads from the cluster and sends, and
// that a SecretStore never reaches outside its own namespace (whatever a spec
// that slipped past the CRD says) nor falls back to the operator's identity.
// The ProviderContext is a fake of our own interface; Vault is a local
// recorder answering logins.
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AnyStore, VaultAuthSpec } from '../../../../src/api/types.js';
import { RegionHealth } from '../../../../src/providers/failover.js';
import { ProviderConfigError, type ProviderContext } from '../../../../src/providers/provider.js';
import { KUBERNETES_JWT_SECONDS, vaultLogin } from '../../../../src/providers/vault/auth.js';
import { VaultHttp } from '../../../../src/providers/vault/http.js';

describe('Vault logins (src/providers/vault/auth.ts)', () => {
  let server: Server;
  let address = '';
  const bodies: { url: string; body: Record<string, unknown> }[] = [];
  const reads: string[] = [];
  const tokenRequests: string[] = [];

  const ctx: ProviderContext = {
    storeNamespace: 'team-a',
    allowOperatorIdentityForNamespacedStores: true,
    policy: { allowedEndpoints: [], localStoreRoot: undefined },
    observe: (_op, call) => call(),
    readSecretKey(namespace, name, key) {
      reads.push(`${namespace}/${name}/${key}`);
      return Promise.resolve(Buffer.from(`${key}-value`));
    },
    requestServiceAccountToken(namespace, name, audiences, seconds) {
      tokenRequests.push(`${namespace}/${name} ${audiences.join(',')} ${seconds}`);
      return Promise.resolve('jwt-for-test');
    },
  };

  const store = (kind: 'SecretStore' | 'ClusterSecretStore', auth: VaultAuthSpec): AnyStore =>
    ({
      apiVersion: 'secretsync.io/v1alpha1',
      kind,
      metadata: kind === 'SecretStore' ? { name: 's', namespace: 'team-a' } : { name: 'c' },
      spec: { provider: { vault: { server: address, auth } } },
    }) as AnyStore;

  const http = () =>
    new VaultHttp({
      store: 'test',
      addresses: [address],
      breaker: { failureThreshold: 3, openSeconds: 30 },
      health: new RegionHealth(),
    });

  before(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        bodies.push({ url: req.url ?? '', body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ auth: { client_token: 'hvs.test', lease_duration: 60, renewable: true } }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  beforeEach(() => {
    bodies.length = 0;
    reads.length = 0;
    tokenRequests.length = 0;
  });

  it('Kubernetes: a SecretStore mints a token for a ServiceAccount of its own namespace, even if the spec names another', async () => {
    const c = http();
    const auth: VaultAuthSpec = {
      kubernetes: {
        role: 'r',
        mountPath: 'k8s-east',
        serviceAccountRef: { name: 'app', namespace: 'kube-system', audiences: ['vault'] },
      },
    };
    const info = await vaultLogin(store('SecretStore', auth), auth, ctx, c)({});
    expect(info).to.deep.equal({ token: 'hvs.test', ttlSeconds: 60, renewable: true });
    expect(tokenRequests).to.deep.equal([`team-a/app vault ${KUBERNETES_JWT_SECONDS}`]);
    expect(bodies).to.deep.equal([{ url: '/v1/auth/k8s-east/login', body: { role: 'r', jwt: 'jwt-for-test' } }]);
    c.close();
  });

  it('Kubernetes: a ClusterSecretStore uses the namespace it names, and needs one', async () => {
    const c = http();
    const auth: VaultAuthSpec = { kubernetes: { role: 'r', serviceAccountRef: { name: 'app', namespace: 'ops' } } };
    await vaultLogin(store('ClusterSecretStore', auth), auth, ctx, c)({});
    expect(tokenRequests).to.deep.equal([`ops/app  ${KUBERNETES_JWT_SECONDS}`]);
    expect(bodies[0]?.url).to.equal('/v1/auth/kubernetes/login');
    const without: VaultAuthSpec = { kubernetes: { role: 'r', serviceAccountRef: { name: 'app' } } };
    let error: unknown;
    await vaultLogin(store('ClusterSecretStore', without), without, ctx, c)({}).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(ProviderConfigError);
    c.close();
  });

  it('AppRole: role and secret ids from the store’s own namespace', async () => {
    const c = http();
    const auth: VaultAuthSpec = {
      appRole: {
        roleIdSecretRef: { name: 'ar', key: 'role', namespace: 'elsewhere' },
        secretIdSecretRef: { name: 'ar', key: 'secret', namespace: 'elsewhere' },
      },
    };
    await vaultLogin(store('SecretStore', auth), auth, ctx, c)({});
    expect(reads).to.deep.equal(['team-a/ar/role', 'team-a/ar/secret']);
    expect(bodies).to.deep.equal([
      { url: '/v1/auth/approle/login', body: { role_id: 'role-value', secret_id: 'secret-value' } },
    ]);
    c.close();
  });

  it('refuses a store without an auth method: never the operator’s own identity, whatever the flag says', () => {
    const c = http();
    expect(() => vaultLogin(store('SecretStore', {}), {}, ctx, c)).to.throw(
      ProviderConfigError,
      /must set kubernetes, appRole or tokenSecretRef/,
    );
    expect(() => vaultLogin(store('ClusterSecretStore', {}), {}, ctx, c)).to.throw(ProviderConfigError);
    c.close();
  });
});
