import { expect } from 'chai';
import { VaultServer } from '../../../tools/testenv/index.js';
import { sharedCluster, sharedVault, uniqueName } from '../env.js';

/** A token for `sa` in `ns` from the real TokenRequest API. */
async function serviceAccountToken(ns: string, sa: string): Promise<string> {
  const cluster = sharedCluster();
  await cluster.adminRequest('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await cluster.adminRequest('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: sa, namespace: ns },
  });
  const res = await cluster.adminRequest('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 600 },
  });
  expect(res.status).to.equal(201);
  return (JSON.parse(res.body) as { status: { token: string } }).status.token;
}

describe('the test Vault server', function () {
  this.timeout(20 * 60_000);

  it('is a real, unsealed Vault whose dev KV v2 engine stores and returns versions', async () => {
    const vault = await sharedVault();
    const health = (await vault.must('GET', 'sys/health')) as { initialized: boolean; sealed: boolean; version: string };
    expect(health).to.include({ initialized: true, sealed: false });
    expect(health.version).to.match(/^1\.21\.4/);
    const path = uniqueName('harness');
    await vault.must('POST', `secret/data/${path}`, { data: { a: '1' } });
    await vault.must('POST', `secret/data/${path}`, { data: { a: '2' } });
    const v1 = (await vault.must('GET', `secret/data/${path}?version=1`)) as { data: { data: { a: string } } };
    expect(v1.data.data.a).to.equal('1');
  });

  it('checks Kubernetes logins with the real API server TokenReview', async () => {
    const vault = await sharedVault();
    const ns = uniqueName('vault-login');
    await vault.must('POST', 'auth/kubernetes/role/harness', {
      bound_service_account_names: ['app'],
      bound_service_account_namespaces: [ns],
      token_policies: ['default'],
      ttl: '60s',
    });
    const good = await serviceAccountToken(ns, 'app');
    const login = await vault.api('POST', 'auth/kubernetes/login', { role: 'harness', jwt: good });
    expect(login.status).to.equal(200);
    expect((login.json as { auth: { policies: string[] } }).auth.policies).to.include('default');

    // Another ServiceAccount is refused by the role; a forged JWT is refused by the TokenReview.
    const other = await serviceAccountToken(ns, 'intruder');
    expect((await vault.api('POST', 'auth/kubernetes/login', { role: 'harness', jwt: other })).status).to.equal(403);
    const [header, payload] = good.split('.');
    const forged = `${header ?? ''}.${payload ?? ''}.${Buffer.from('not-a-signature').toString('base64url')}`;
    expect((await vault.api('POST', 'auth/kubernetes/login', { role: 'harness', jwt: forged })).status).to.equal(403);
  });

  it('seals and unseals, and serves TLS with its own CA', async () => {
    const vault = await VaultServer.start({ tls: true });
    try {
      expect(vault.address).to.match(/^https:/);
      expect(vault.caPem).to.include('BEGIN CERTIFICATE');
      await vault.seal();
      const sealed = await vault.api('GET', 'secret/data/x');
      expect(sealed.status).to.equal(503);
      expect(JSON.stringify(sealed.json)).to.include('Vault is sealed');
      await vault.unseal();
      expect((await vault.api('GET', 'sys/health')).status).to.equal(200);
    } finally {
      await vault.stop();
    }
  });
});
