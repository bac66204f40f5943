// Issued credentials end to end: the operator (in this process) against the
// real control plane, a real Vault dev server, and moto behind Vault's AWS
// engine. Certificates from a PKI role into kubernetes.io/tls Secrets, renewed
// before expiry with one coordinated rollout restart; AWS IAM-user leases
// renewed (same lease id, later expiry), re-issued near max_ttl, revoked on
// deletion (the IAM user is gone in moto) or left with onDelete: Orphan; a
// path outside issuePaths refused; no value in status, Events or logs.
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { API_VERSION, FINALIZER_REVOKE_LEASES, type ManagedSecret } from '../../../src/api/types.js';
import type { KubeClient, KubeObject } from '../../../src/kube/client.js';
import { sleep, waitFor, type VaultServer } from '../../../tools/testenv/index.js';
import { sharedCluster, sharedMoto, sharedVault, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  listEvents,
  startOperator,
  testStorePolicy,
  waitForReady,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';
import { leaseOf, motoIamUsers, motoUserOfKey, setUpAws, setUpPki } from './issued-vault.js';

interface Deployment {
  metadata: { name: string; generation?: number };
  spec: { template: { metadata?: { annotations?: Record<string, string> } } };
}

describe('Vault issued credentials (certificates, dynamic secrets, leases)', function () {
  this.timeout(180_000);
  let vault: VaultServer;
  let operator: RunningOperator;
  const namespace = uniqueName('vault-issue');
  // Engines at mounts of this test's own on the shared Vault server.
  const suffix = namespace.slice('vault-issue-'.length);
  const pki = `pki-${suffix}`;
  const aws = `aws-${suffix}`;
  const client = (): KubeClient => adminClient(sharedCluster());
  const msPath = (name = '') => `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets${name ? `/${name}` : ''}`;
  const deployPath = (name = '') => `/apis/apps/v1/namespaces/${namespace}/deployments${name ? `/${name}` : ''}`;
  /** Every value the tests saw in a Secret: none may appear in status, Events or logs. */
  const seenValues: string[] = [];

  async function store(name: string, issuePaths?: string[]): Promise<void> {
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name },
        spec: {
          provider: {
            vault: {
              server: vault.address,
              auth: { tokenSecretRef: { name: 'vault-token', key: 'token' } },
              ...(issuePaths ? { issuePaths } : {}),
            },
          },
        },
      },
    });
  }

  async function managedSecret(name: string, spec: Partial<ManagedSecret['spec']>): Promise<void> {
    await createManagedSecret(client(), namespace, {
      metadata: { name },
      spec: { storeRef: { name: 'vault' }, ...spec } as ManagedSecret['spec'],
    });
  }

  const issuedOf = async (name: string) => (await getManagedSecret(client(), namespace, name)).status?.issued?.[0];

  async function gone(path: string): Promise<boolean> {
    try {
      await client().get(path);
      return false;
    } catch (err) {
      if ((err as { status?: number }).status === 404) return true;
      throw err;
    }
  }

  before(async function () {
    this.timeout(120_000);
    vault = await sharedVault();
    await setUpPki(vault, pki);
    // Leases of 10 s, renewable up to 30 s: renewals at 6.6 s, then a re-issue near 26 s.
    await setUpAws(vault, aws, sharedMoto().endpoint, '10s', '30s');
    await ensureNamespace(client(), namespace);
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'vault-token' },
        stringData: { token: vault.rootToken },
      },
    });
    await store('vault', [`${pki}/issue/`, `${aws}/creds/`]);
    await store('vault-pki-only', [`${pki}/issue/`]);
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: testStorePolicy([vault.address]),
    });
  });

  afterEach(async function () {
    // On a failure, say what each ManagedSecret's Ready condition says (messages carry no values).
    if (this.currentTest?.state !== 'failed') return;
    for (const ms of (await client().list<ManagedSecret>(msPath())).items)
      console.error(`${ms.metadata.name}: ${JSON.stringify(ms.status?.conditions ?? [])}`);
  });

  after(async function () {
    this.timeout(60_000);
    // Let the finalizers go before the operator stops, so the namespace can be cleaned up.
    for (const ms of (await client().list<ManagedSecret>(msPath())).items)
      if (ms.metadata.finalizers?.includes(FINALIZER_REVOKE_LEASES))
        await client().request('DELETE', msPath(ms.metadata.name));
    await sleep(2_000);
    await operator?.stop();
    for (const mount of [pki, aws]) await vault?.api('DELETE', `sys/mounts/${mount}`);
  });

  it('issues a certificate into a kubernetes.io/tls Secret and re-issues it before expiry with one rollout restart', async () => {
    await client().request('POST', deployPath(), {
      body: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', labels: { app: 'web' } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'app', image: 'example.invalid/web:1' }] },
          },
        },
      },
    });
    await managedSecret('web-tls', {
      dataFrom: [
        {
          certificate: {
            path: `${pki}/issue/web`,
            commonName: 'web.example.com',
            altNames: ['www.example.com'],
            ipSans: ['10.1.2.3'],
            ttl: '40s',
            renewAtPercent: 50,
          },
        },
      ],
      rolloutRestart: { targets: [{ kind: 'Deployment', name: 'web' }], debounce: '1s' },
    });
    const ms = await waitForReady(client(), namespace, 'web-tls', 'True', undefined, 30_000);
    const secret = await getSecret(client(), namespace, 'web-tls');
    expect(secret?.type).to.equal('kubernetes.io/tls');
    const data = decoded(secret);
    expect(Object.keys(data).sort()).to.deep.equal(['ca.crt', 'tls.crt', 'tls.key']);
    seenValues.push(data['tls.key']!);
    const leaf = new X509Certificate(data['tls.crt']!);
    const ca = new X509Certificate(data['ca.crt']!);
    expect(leaf.subject).to.include('CN=web.example.com');
    expect(leaf.subjectAltName).to.include('DNS:www.example.com').and.include('IP Address:10.1.2.3');
    expect(leaf.verify(ca.publicKey)).to.equal(true);
    expect(data['tls.key']).to.match(/^-----BEGIN (EC )?PRIVATE KEY-----/);
    const first = ms.status?.issued?.[0];
    expect(first?.source).to.equal('dataFrom[0]');
    // Vault writes the serial as colon-separated bytes, so a leading zero byte stays ("0f:27:…");
    // compare without separators and leading zeros, as the controller does.
    const hex = (s: string | undefined) => s?.replace(/:/g, '').replace(/^0+/, '').toUpperCase();
    expect(hex(first?.serialNumber)).to.equal(hex(leaf.serialNumber));
    expect(Date.parse(first!.expiresAt!)).to.equal(Date.parse(leaf.validTo));
    // A certificate has no lease: no finalizer.
    expect(ms.metadata.finalizers ?? []).not.to.include(FINALIZER_REVOKE_LEASES);
    const before = await client().get<Deployment>(deployPath('web'));
    expect(before.spec.template.metadata?.annotations?.['secretsync.io/restarted-at']).to.equal(undefined);

    // Renewed at 50% of 40 s: a new certificate and a new key, before the old one expires.
    const renewed = await waitForSecretData(
      client(),
      namespace,
      'web-tls',
      (d) => d['tls.crt'] !== data['tls.crt'],
      40_000,
    );
    const renewedAt = Date.now();
    expect(renewedAt).to.be.below(Date.parse(leaf.validTo));
    const next = decoded(renewed);
    seenValues.push(next['tls.key']!);
    expect(next['tls.key']).not.to.equal(data['tls.key']);
    expect(new X509Certificate(next['tls.crt']!).serialNumber).not.to.equal(leaf.serialNumber);
    const restarted = await waitFor(
      'the rollout restart',
      async () => {
        const d = await client().get<Deployment>(deployPath('web'));
        return d.spec.template.metadata?.annotations?.['secretsync.io/restarted-at'] ? d : undefined;
      },
      15_000,
    );
    // One coordinated restart: one template change, and no second one within the next seconds.
    await sleep(4_000);
    const after = await client().get<Deployment>(deployPath('web'));
    expect(after.metadata.generation).to.equal((before.metadata.generation ?? 0) + 1);
    expect(after.spec.template.metadata?.annotations).to.deep.equal(restarted.spec.template.metadata?.annotations);
    await client().request('DELETE', msPath('web-tls'));
  });

  it('renews a lease (same lease id, later expiry), re-issues near max_ttl, and revokes it on deletion', async () => {
    const moto = sharedMoto().endpoint;
    await managedSecret('aws-creds', { dataFrom: [{ dynamic: { path: `${aws}/creds/app` } }] });
    const ms = await waitForReady(client(), namespace, 'aws-creds', 'True', undefined, 30_000);
    expect(ms.metadata.finalizers).to.include(FINALIZER_REVOKE_LEASES);
    const first = ms.status!.issued![0]!;
    expect(first.leaseId?.startsWith(`${aws}/creds/app/`)).to.equal(true);
    expect(first.renewable).to.equal(true);
    expect(first.keys).to.include.members(['access_key', 'secret_key']);
    const data = decoded(await getSecret(client(), namespace, 'aws-creds'));
    seenValues.push(data.secret_key!, data.access_key!);
    const firstUser = await motoUserOfKey(moto, data.access_key!);
    expect(await motoIamUsers(moto)).to.include(firstUser);

    // Renewed at 66% of 10 s: same lease, same values, later expiry (Vault agrees).
    const renewed = await waitFor(
      'the lease renewed',
      async () => {
        const e = await issuedOf('aws-creds');
        return e && e.leaseId === first.leaseId && e.expiresAt !== first.expiresAt ? e : undefined;
      },
      20_000,
    );
    expect(Date.parse(renewed.expiresAt!)).to.be.greaterThan(Date.parse(first.expiresAt!));
    expect(decoded(await getSecret(client(), namespace, 'aws-creds'))).to.deep.equal(data);
    const lease = await leaseOf(vault, first.leaseId!);
    expect(lease, 'Vault still knows the lease').not.to.equal(undefined);
    expect(Date.parse(lease!.expire_time)).to.be.at.least(Date.parse(renewed.expiresAt!) - 2_000);

    // Near max_ttl (30 s) a renewal cannot reach the next renewal point: a new lease and new keys, in time.
    await waitFor(
      'a new lease near max_ttl',
      async () => {
        const e = await issuedOf('aws-creds');
        return e && e.leaseId !== first.leaseId ? e : undefined;
      },
      40_000,
    );
    expect(Date.now() - Date.parse(first.issuedAt)).to.be.below(31_000);
    const fresh = decoded(
      await waitForSecretData(client(), namespace, 'aws-creds', (d) => d.access_key !== data.access_key),
    );
    seenValues.push(fresh.secret_key!);
    expect(await motoUserOfKey(moto, fresh.access_key!)).not.to.equal(firstUser);

    // Deleted: the current lease is revoked (its IAM user deleted in moto), then the finalizer released.
    const current = (await issuedOf('aws-creds'))!;
    const currentUser = await motoUserOfKey(
      moto,
      decoded(await getSecret(client(), namespace, 'aws-creds')).access_key!,
    );
    await client().request('DELETE', msPath('aws-creds'));
    await waitFor('the ManagedSecret gone', async () => ((await gone(msPath('aws-creds'))) ? true : undefined), 20_000);
    expect(await motoIamUsers(moto)).not.to.include(currentUser);
    expect(await leaseOf(vault, current.leaseId!)).to.equal(undefined);
    const events = await listEvents(client(), namespace);
    expect(events.map((e) => (e as KubeObject & { reason?: string }).reason)).to.include('LeaseRevoked');
  });

  it('leaves the lease alone with onDelete: Orphan', async () => {
    const moto = sharedMoto().endpoint;
    await managedSecret('aws-orphan', { dataFrom: [{ dynamic: { path: `${aws}/creds/app`, onDelete: 'Orphan' } }] });
    const ms = await waitForReady(client(), namespace, 'aws-orphan', 'True', undefined, 30_000);
    expect(ms.metadata.finalizers ?? []).not.to.include(FINALIZER_REVOKE_LEASES);
    const leaseId = ms.status!.issued![0]!.leaseId!;
    const data = decoded(await getSecret(client(), namespace, 'aws-orphan'));
    seenValues.push(data.secret_key!);
    const user = await motoUserOfKey(moto, data.access_key!);
    await client().request('DELETE', msPath('aws-orphan'));
    await waitFor(
      'the ManagedSecret gone',
      async () => ((await gone(msPath('aws-orphan'))) ? true : undefined),
      10_000,
    );
    await sleep(1_000);
    expect(await motoIamUsers(moto)).to.include(user);
    expect(await leaseOf(vault, leaseId)).not.to.equal(undefined);
    await vault.must('PUT', 'sys/leases/revoke', { lease_id: leaseId });
  });

  it('keeps a valid certificate across refreshes and an operator restart: no re-issue, no status writes', async () => {
    await managedSecret('kept-tls', {
      refreshInterval: '1s',
      dataFrom: [{ certificate: { path: `${pki}/issue/web`, commonName: 'kept.example.com', ttl: '10m' } }],
    });
    const ms = await waitForReady(client(), namespace, 'kept-tls', 'True', undefined, 30_000);
    const serial = ms.status!.issued![0]!.serialNumber;
    const data = decoded(await getSecret(client(), namespace, 'kept-tls'));
    seenValues.push(data['tls.key']!);
    const statusWrites = async (op: RunningOperator) =>
      (await op.metrics.kubeWrites.get()).values
        .filter((v) => v.labels.resource === 'managedsecrets/status')
        .reduce((n, v) => n + v.value, 0);
    const refreshes = async (op: RunningOperator) =>
      (await op.metrics.syncs.get()).values
        .filter((v) => v.labels.result === 'unchanged')
        .reduce((n, v) => n + v.value, 0);
    // Refreshes every second: the certificate is kept, and an unchanged status is not written again.
    await sleep(1_500);
    const [writes, synced] = [await statusWrites(operator), await refreshes(operator)];
    await sleep(4_000);
    expect(await refreshes(operator)).to.be.greaterThan(synced);
    expect(await statusWrites(operator)).to.equal(writes);
    // A new operator process knows nothing in memory: the values come back from the Secret (same serial).
    await operator.stop();
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: testStorePolicy([vault.address]),
    });
    await waitFor(
      'a refresh by the new operator',
      async () => ((await refreshes(operator)) > 2 ? true : undefined),
      20_000,
    );
    expect((await getManagedSecret(client(), namespace, 'kept-tls')).status?.issued?.[0]?.serialNumber).to.equal(
      serial,
    );
    expect(decoded(await getSecret(client(), namespace, 'kept-tls'))).to.deep.equal(data);
    expect(operator.logs.filter((l) => l.includes('"issued"'))).to.deep.equal([]);
    await client().request('DELETE', msPath('kept-tls'));
  });

  it('releases the finalizer when the store is gone, once the lease has expired by itself', async () => {
    await store('vault-temp', [`${aws}/creds/`]);
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'storeless' },
      spec: { storeRef: { name: 'vault-temp' }, dataFrom: [{ dynamic: { path: `${aws}/creds/app` } }] },
    });
    const ms = await waitForReady(client(), namespace, 'storeless', 'True', undefined, 30_000);
    seenValues.push(decoded(await getSecret(client(), namespace, 'storeless')).secret_key!);
    expect(ms.metadata.finalizers).to.include(FINALIZER_REVOKE_LEASES);
    await client().request('DELETE', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores/vault-temp`);
    await sleep(500);
    const deletedAt = Date.now();
    await client().request('DELETE', msPath('storeless'));
    // Leases of 10 s: expired at most 10 s after the deletion; released at the back-off's next look after that
    // (1, 2, 4, 8, 16 s ± 50%: at worst about 46 s), long before the 8 attempts (minutes).
    await waitFor('the ManagedSecret gone', async () => ((await gone(msPath('storeless'))) ? true : undefined), 60_000);
    expect(Date.now() - deletedAt).to.be.below(60_000);
    const warnings = (await listEvents(client(), namespace)).filter(
      (e) => (e as KubeObject & { reason?: string }).reason === 'RevokeFailed',
    ) as (KubeObject & { message?: string; involvedObject?: { name?: string } })[];
    const mine = warnings.filter((e) => e.involvedObject?.name === 'storeless');
    expect(mine.map((e) => e.message).join('\n')).to.include('expired by themselves');
  });

  it('refuses a path outside the store issuePaths, with a status reason and an Event, and issues nothing', async () => {
    const usersBefore = await motoIamUsers(sharedMoto().endpoint);
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'outside' },
      spec: { storeRef: { name: 'vault-pki-only' }, dataFrom: [{ dynamic: { path: `${aws}/creds/app` } }] },
    });
    const ms = await waitForReady(client(), namespace, 'outside', 'False', 'IssuePathNotAllowed');
    expect(readyMessage(ms)).to.include(`${aws}/creds/app`).and.include(`${pki}/issue/`);
    await waitFor(
      'the IssuePathNotAllowed Event',
      async () =>
        (await listEvents(client(), namespace)).some(
          (e) => (e as KubeObject & { reason?: string }).reason === 'IssuePathNotAllowed',
        )
          ? true
          : undefined,
      10_000,
    );
    expect(await getSecret(client(), namespace, 'outside')).to.equal(undefined);
    expect(ms.metadata.finalizers ?? []).to.deep.equal([]);
    expect(await motoIamUsers(sharedMoto().endpoint)).to.deep.equal(usersBefore);
  });

  it('says why Vault refuses to issue (a name the PKI role does not allow)', async () => {
    await managedSecret('bad-name', {
      dataFrom: [{ certificate: { path: `${pki}/issue/web`, commonName: 'web.not-allowed.invalid' } }],
    });
    const ms = await waitForReady(client(), namespace, 'bad-name', 'False', 'IssueRefused');
    expect(readyMessage(ms)).to.include('web.not-allowed.invalid').and.include('not allowed');
    expect(await getSecret(client(), namespace, 'bad-name')).to.equal(undefined);
    await client().request('DELETE', msPath('bad-name'));
  });

  it('stops at a refused path: a renewal point that passes while refused does not loop', async () => {
    await store('vault-narrow', [`${pki}/issue/`]);
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'narrowed' },
      spec: {
        storeRef: { name: 'vault-narrow' },
        dataFrom: [{ certificate: { path: `${pki}/issue/web`, commonName: 'narrow.example.com', ttl: '6s' } }],
      },
    });
    const ms = await waitForReady(client(), namespace, 'narrowed', 'True', undefined, 30_000);
    seenValues.push(decoded(await getSecret(client(), namespace, 'narrowed'))['tls.key']!);
    const refusals = async () =>
      (await operator.metrics.syncs.get()).values
        .filter((v) => v.labels.reason === 'IssuePathNotAllowed')
        .reduce((n, v) => n + v.value, 0);
    const before = await refusals();
    // The admin narrows the store: the certificate's path is no longer allowed.
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores/vault-narrow`, {
      body: { spec: { provider: { vault: { issuePaths: [`${aws}/creds/`] } } } },
      contentType: 'application/merge-patch+json',
    });
    await waitFor(
      'the refusal',
      async () => {
        const ready = (await getManagedSecret(client(), namespace, 'narrowed')).status?.conditions?.find(
          (c) => c.type === 'Ready',
        );
        return ready?.reason === 'IssuePathNotAllowed' ? true : undefined;
      },
      15_000,
    );
    // The recorded renewal point (about 4 s after issue) passes while refused: no pass per second.
    const renewAt = Date.parse(ms.status!.issued![0]!.renewAt!);
    await sleep(Math.max(0, renewAt - Date.now()) + 5_000);
    expect((await refusals()) - before).to.be.at.most(2);
    await client().request('DELETE', msPath('narrowed'));
  });

  it('puts no issued value in status, Events or the operator log', async () => {
    expect(seenValues.length).to.be.greaterThan(3);
    const statuses = JSON.stringify((await client().list<ManagedSecret>(msPath())).items.map((m) => m.status));
    const events = JSON.stringify(await listEvents(client(), namespace));
    const logs = operator.logs.join('\n');
    for (const value of seenValues) {
      const probe = value.length > 40 ? value.slice(30, 70) : value;
      expect(statuses.includes(probe), 'status').to.equal(false);
      expect(events.includes(probe), 'Events').to.equal(false);
      expect(logs.includes(probe), 'log').to.equal(false);
    }
    expect(events).not.to.include('PRIVATE KEY');
    expect(logs).not.to.include('PRIVATE KEY');
  });
});

const readyMessage = (ms: ManagedSecret) => ms.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
