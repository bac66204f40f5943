// Vault stores through the operator, against the real control plane and a
// real (dev-mode) Vault server: a ManagedSecret synced from KV v2; a sealed
// Vault (Ready=False VaultSealed, the Secret kept, recovery on unseal); a
// policy that stops allowing the path (PermissionDenied, the Secret kept even
// with deletionPolicy Delete); a pinned version that does not exist
// (VersionNotFound, nothing removed); a rotation written back to Vault.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_VERSION } from '../../../src/api/types.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  spawnOperatorProcess,
  startOperator,
  testStorePolicy,
  type OperatorProcess,
  waitForReady,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';
import { TcpFaultProxy, VaultServer, waitFor } from '../../../tools/testenv/index.js';

const readyReason = (ms: { status?: { conditions?: { type: string; reason: string }[] } }) =>
  ms.status?.conditions?.find((c) => c.type === 'Ready')?.reason;

describe('Vault stores through the operator (real Vault, real control plane)', function () {
  this.timeout(180_000);
  let vault: VaultServer;
  let operator: RunningOperator;
  const namespace = uniqueName('vault');
  const client = () => adminClient(sharedCluster());

  async function secret(name: string, data: Record<string, string>): Promise<void> {
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name },
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      },
    });
  }

  async function store(name: string, tokenSecret: string): Promise<void> {
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name },
        spec: {
          provider: { vault: { server: vault.address, auth: { tokenSecretRef: { name: tokenSecret, key: 'token' } } } },
        },
      },
    });
  }

  before(async () => {
    vault = await VaultServer.start();
    await ensureNamespace(client(), namespace);
    // The operator allows this namespace's stores to reach the test Vault, as an admin would with --allowed-endpoints.
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: testStorePolicy([vault.address]),
    });
    await secret('root-token', { token: vault.rootToken });
    await store('vault', 'root-token');
  });

  after(async () => {
    await operator?.stop();
    await vault?.stop();
  });

  it('syncs, reports a sealed Vault as VaultSealed while keeping the Secret, and recovers on unseal', async () => {
    await vault.must('POST', 'secret/data/app/db', { data: { password: 'p1', user: 'app' } });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'db' },
      spec: {
        storeRef: { name: 'vault' },
        refreshInterval: '1s',
        data: [{ secretKey: 'password', remoteRef: { key: 'app/db', property: 'password' } }],
        dataFrom: [{ extract: { key: 'app/db' } }],
        target: { deletionPolicy: 'Delete' },
      },
    });
    await waitForSecretData(client(), namespace, 'db', (d) => d.password === 'p1' && d.user === 'app');
    await waitForReady(client(), namespace, 'db', 'True');

    await vault.seal();
    const sealed = await waitForReady(client(), namespace, 'db', 'False', 'VaultSealed', 30_000);
    expect(sealed.status?.conditions?.find((c) => c.type === 'Ready')?.message).to.contain('sealed');
    expect(decoded(await getSecret(client(), namespace, 'db'))).to.deep.equal({ password: 'p1', user: 'app' });

    await vault.unseal();
    await vault.must('POST', 'secret/data/app/db', { data: { password: 'p2', user: 'app' } });
    await waitForSecretData(client(), namespace, 'db', (d) => d.password === 'p2', 30_000);
    await waitForReady(client(), namespace, 'db', 'True');
  });

  it('keeps the Secret when a policy stops allowing the path (PermissionDenied), even with deletionPolicy Delete', async () => {
    await vault.must('PUT', 'sys/policies/acl/team', {
      policy: 'path "secret/data/team/*" { capabilities = ["read"] }',
    });
    const token = await vault.must<{ auth: { client_token: string } }>('POST', 'auth/token/create', {
      policies: ['team'],
      ttl: '1h',
    });
    await secret('team-token', { token: token.auth.client_token });
    await store('team', 'team-token');
    await vault.must('POST', 'secret/data/team/api', { data: { key: 'k1' } });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'api' },
      spec: {
        storeRef: { name: 'team' },
        refreshInterval: '1s',
        data: [{ secretKey: 'key', remoteRef: { key: 'team/api', property: 'key' } }],
        target: { deletionPolicy: 'Delete' },
      },
    });
    await waitForSecretData(client(), namespace, 'api', (d) => d.key === 'k1');

    await vault.must('PUT', 'sys/policies/acl/team', {
      policy: 'path "secret/data/elsewhere/*" { capabilities = ["read"] }',
    });
    const denied = await waitForReady(client(), namespace, 'api', 'False', 'PermissionDenied', 30_000);
    const message = denied.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
    expect(message).to.contain('permission denied').and.not.contain(token.auth.client_token);
    expect(decoded(await getSecret(client(), namespace, 'api'))).to.deep.equal({ key: 'k1' });
  });

  it('reports a pinned version that does not exist as VersionNotFound and removes nothing', async () => {
    await vault.must('POST', 'secret/data/pin/x', { data: { v: 'one' } });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'pinned' },
      spec: {
        storeRef: { name: 'vault' },
        refreshInterval: '1s',
        data: [{ secretKey: 'v', remoteRef: { key: 'pin/x', property: 'v', version: '1' } }],
        target: { deletionPolicy: 'Delete' },
      },
    });
    await waitForSecretData(client(), namespace, 'pinned', (d) => d.v === 'one');
    // The pinned version is destroyed.
    await vault.must('POST', 'secret/destroy/pin/x', { versions: [1] });
    await waitForReady(client(), namespace, 'pinned', 'False', 'VersionNotFound', 30_000);
    expect(decoded(await getSecret(client(), namespace, 'pinned'))).to.deep.equal({ v: 'one' });
  });

  it('logs in with Kubernetes auth: a TokenRequest token of the store’s own ServiceAccount, checked by a real TokenReview', async () => {
    await vault.configureKubernetesAuth(sharedCluster());
    for (const sa of ['app-reader', 'not-bound']) {
      await client().request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, {
        body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } },
      });
    }
    await vault.must('PUT', 'sys/policies/acl/k8s-app', {
      policy: 'path "secret/data/k8s/*" { capabilities = ["read"] }',
    });
    await vault.must('POST', 'auth/kubernetes/role/team', {
      bound_service_account_names: ['app-reader'],
      bound_service_account_namespaces: [namespace],
      audience: 'vault',
      token_policies: ['k8s-app'],
      token_ttl: '1h',
    });
    await vault.must('POST', 'secret/data/k8s/app', { data: { api: 'from-k8s-auth' } });
    const k8sStore = async (name: string, sa: string) =>
      client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
        body: {
          apiVersion: API_VERSION,
          kind: 'SecretStore',
          metadata: { name },
          spec: {
            provider: {
              vault: {
                server: vault.address,
                auth: { kubernetes: { role: 'team', serviceAccountRef: { name: sa, audiences: ['vault'] } } },
              },
            },
          },
        },
      });
    await k8sStore('k8s', 'app-reader');
    await k8sStore('k8s-unbound', 'not-bound');
    for (const [name, store] of [
      ['k8s-app', 'k8s'],
      ['k8s-unbound', 'k8s-unbound'],
    ] as const) {
      await createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: {
          storeRef: { name: store },
          refreshInterval: '1s',
          data: [{ secretKey: 'api', remoteRef: { key: 'k8s/app', property: 'api' } }],
        },
      });
    }
    await waitForSecretData(client(), namespace, 'k8s-app', (d) => d.api === 'from-k8s-auth', 30_000);
    // A ServiceAccount the role does not bind: Vault refuses the login; nothing is written.
    const refused = await waitForReady(client(), namespace, 'k8s-unbound', 'False', undefined, 30_000);
    expect(readyReason(refused)).to.equal('PermissionDenied');
    expect(refused.status?.conditions?.find((c) => c.type === 'Ready')?.message).to.contain('Kubernetes login');
    expect(await getSecret(client(), namespace, 'k8s-unbound')).to.equal(undefined);
  });

  it('trusts a TLS Vault through the operator’s default CA bundle (the chart: extraVolumes + NODE_EXTRA_CA_CERTS)', async () => {
    const secure = await VaultServer.start({ tls: true });
    const ns = uniqueName('vault-ca');
    const dir = mkdtempSync(join(tmpdir(), 'secretsync-vault-ca-'));
    const caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, secure.caPem ?? '');
    let child: OperatorProcess | undefined;
    try {
      await secure.must('POST', 'secret/data/tls/app', { data: { v: 'trusted-by-default' } });
      await ensureNamespace(client(), ns);
      await client().request('POST', `/api/v1/namespaces/${ns}/secrets`, {
        body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 't' }, stringData: { token: secure.rootToken } },
      });
      // No tls block: the store trusts what the operator process trusts.
      await client().request('POST', `/apis/${API_VERSION}/namespaces/${ns}/secretstores`, {
        body: {
          apiVersion: API_VERSION,
          kind: 'SecretStore',
          metadata: { name: 'vault' },
          spec: {
            provider: { vault: { server: secure.address, auth: { tokenSecretRef: { name: 't', key: 'token' } } } },
          },
        },
      });
      await createManagedSecret(client(), ns, {
        metadata: { name: 'app' },
        spec: { storeRef: { name: 'vault' }, data: [{ secretKey: 'v', remoteRef: { key: 'tls/app', property: 'v' } }] },
      });
      child = spawnOperatorProcess(sharedCluster(), [ns], ['--allowed-endpoints', secure.address], {
        NODE_EXTRA_CA_CERTS: caFile,
      });
      await waitForSecretData(client(), ns, 'app', (d) => d.v === 'trusted-by-default', 60_000);
    } finally {
      child?.child.kill('SIGKILL');
      await secure.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails over to the second address while the first is unreachable, shows it on the store, and comes back', async () => {
    const url = new URL(vault.address);
    const proxy = await TcpFaultProxy.start({ host: url.hostname, port: Number(url.port) });
    const primary = `http://127.0.0.1:${proxy.port}`;
    const ns = uniqueName('vault-fo');
    const local = await startOperator(sharedCluster(), {
      namespaces: [ns],
      storePolicy: testStorePolicy([primary, vault.address]),
      providerTimeouts: { connectMs: 500, requestMs: 1000 },
    });
    const storeOf = () =>
      client().get<{
        status?: { activeRegion?: string; activeEndpoint?: string; conditions?: { type: string; reason: string }[] };
      }>(`/apis/${API_VERSION}/namespaces/${ns}/secretstores/vault`);
    try {
      await vault.must('POST', 'secret/data/fo/app', { data: { v: 'fo-1' } });
      await ensureNamespace(client(), ns);
      await client().request('POST', `/api/v1/namespaces/${ns}/secrets`, {
        body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 't' }, stringData: { token: vault.rootToken } },
      });
      await client().request('POST', `/apis/${API_VERSION}/namespaces/${ns}/secretstores`, {
        body: {
          apiVersion: API_VERSION,
          kind: 'SecretStore',
          metadata: { name: 'vault' },
          spec: {
            provider: {
              vault: {
                server: primary,
                failover: [vault.address],
                circuitBreaker: { failureThreshold: 1, openSeconds: 2 },
                auth: { tokenSecretRef: { name: 't', key: 'token' } },
              },
            },
          },
        },
      });
      await createManagedSecret(client(), ns, {
        metadata: { name: 'app' },
        spec: {
          storeRef: { name: 'vault' },
          refreshInterval: '1s',
          data: [{ secretKey: 'v', remoteRef: { key: 'fo/app', property: 'v' } }],
        },
      });
      await waitForSecretData(client(), ns, 'app', (d) => d.v === 'fo-1');
      proxy.setMode('blackhole');
      await vault.must('POST', 'secret/data/fo/app', { data: { v: 'fo-2' } });
      await waitForSecretData(client(), ns, 'app', (d) => d.v === 'fo-2', 30_000);
      const failed = await waitFor(
        'the store served by the failover address',
        async () => {
          const s = await storeOf();
          return s.status?.activeEndpoint === url.host ? s : undefined;
        },
        30_000,
      );
      expect(failed.status?.activeRegion).to.equal('vault');
      expect(failed.status?.conditions?.find((c) => c.type === 'Failover')?.reason).to.equal('FailedOver');
      const ms = await getManagedSecret(client(), ns, 'app');
      expect(ms.status?.endpoint).to.equal(url.host);
      proxy.setMode('forward');
      await waitFor(
        'the store back on its primary address',
        async () => ((await storeOf()).status?.activeEndpoint === `127.0.0.1:${proxy.port}` ? true : undefined),
        60_000,
      );
    } finally {
      await local.stop();
      await proxy.stop();
    }
  });

  it('rotates: the new value is written to Vault as a new KV v2 version and synced into the Secret', async () => {
    await vault.must('POST', 'secret/data/rotated/db', { data: { user: 'app', password: 'initial' } });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'rotated' },
      spec: {
        storeRef: { name: 'vault' },
        refreshInterval: '1h',
        dataFrom: [{ extract: { key: 'rotated/db' } }],
        rotation: {
          interval: '720h',
          generator: { password: { length: 24 } },
          remoteRef: { key: 'rotated/db', property: 'password' },
        },
      },
    });
    const synced = await waitForSecretData(
      client(),
      namespace,
      'rotated',
      (d) => d.password !== undefined && d.password !== 'initial',
      30_000,
    );
    const read = await vault.must<{ data: { data: Record<string, string>; metadata: { version: number } } }>(
      'GET',
      'secret/data/rotated/db',
    );
    expect(read.data.metadata.version).to.equal(2);
    expect(read.data.data.user).to.equal('app');
    expect(decoded(synced).password).to.equal(read.data.data.password);
    const ms = await getManagedSecret(client(), namespace, 'rotated');
    expect(ms.status?.rotationVersion).to.equal('2');
  });
});
