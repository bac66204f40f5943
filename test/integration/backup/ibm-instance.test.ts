// `secretsync ibm copy-to-secondary`, `backup --include-store` and `restore
// --to-store` against three IBM Cloud Secrets Manager contract servers
// (tools/ibm-sm-server/, not the live service) and the real kube-apiserver the
// stores and their credentials are read from: what is created, updated and
// left alone on the secondary, a second run that writes nothing, types IBM
// makes the values of skipped with a reason, a dry run that writes nothing,
// and a backup → restore round trip into a third instance with every copyable
// type, its labels and custom metadata. No value appears in any output or in
// the backup file.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackup, readHeader } from '../../../src/backup/format.js';
import { API_VERSION } from '../../../src/api/types.js';
import { main, type CliIo } from '../../../src/cli/main.js';
import { IbmSecretsManagerServer } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';
import { adminClient, ensureNamespace } from '../operator.js';

const API_KEY = `copy-test-${randomBytes(6).toString('hex')}`;

interface Run {
  code: number;
  out: string[];
  err: string[];
}

type Json = Record<string, unknown>;

describe('IBM Cloud Secrets Manager: copy to the secondary instance, backup and restore (contract servers)', function () {
  this.timeout(120_000);
  const namespace = uniqueName('ibm-copy');
  const clusterStore = uniqueName('ibm-copy-css');
  const restoreStore = uniqueName('ibm-restore-css');
  const client = () => adminClient(sharedCluster());
  // Distinctive values: every line of output and the backup file are searched for them.
  const v = (what: string) => `${what}-${randomBytes(8).toString('hex')}`;
  const values = {
    arbitrary: v('arb'),
    changed: v('changed'),
    stale: v('stale'),
    password: v('pw'),
    kvToken: v('kvtok'),
    certKey: `-----BEGIN PRIVATE KEY-----\n${v('key')}\n-----END PRIVATE KEY-----`,
    apiKey: v('iamkey'),
    publicKey: v('pubkey'),
    privateCertKey: v('pckey'),
  };
  const cert = '-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----';
  const intermediate = '-----BEGIN CERTIFICATE-----\nintermediate\n-----END CERTIFICATE-----';
  const allOutput: string[] = [];
  let primary: IbmSecretsManagerServer;
  let secondary: IbmSecretsManagerServer;
  let restored: IbmSecretsManagerServer;
  let tmp: string;
  /** The test's own IAM token (an hour's worth). */
  let token: string | undefined;

  async function cli(...args: string[]): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), readStdin: async () => Buffer.alloc(0) };
    const code = await main(['node', 'secretsync', ...args], io);
    allOutput.push(...out, ...err);
    return { code, out, err };
  }

  async function api(server: IbmSecretsManagerServer, method: string, path: string, body?: unknown): Promise<Json> {
    if (token === undefined) {
      const login = await fetch(`${primary.iamEndpoint}/identity/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey: API_KEY }).toString(),
      });
      token = ((await login.json()) as { access_token: string }).access_token;
    }
    const res = await fetch(`${server.serviceUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as Json;
  }

  /** Every secret of an instance with its current value, by `<group name>/<type>/<name>`. */
  async function contents(server: IbmSecretsManagerServer): Promise<Map<string, Json>> {
    const groups = (await api(server, 'GET', '/api/v2/secret_groups')).secret_groups as Json[];
    const nameOf = new Map(groups.map((g) => [g.id, g.name]));
    const list = (await api(server, 'GET', '/api/v2/secrets?limit=1000')).secrets as Json[];
    const out = new Map<string, Json>();
    for (const s of list) {
      const full = await api(server, 'GET', `/api/v2/secrets/${String(s.id)}`);
      out.set(`${String(nameOf.get(s.secret_group_id))}/${String(s.secret_type)}/${String(s.name)}`, full);
    }
    return out;
  }

  /** Requests that wrote something (not GET, not an IAM login). */
  const writes = (server: IbmSecretsManagerServer, since: number) =>
    server.contract.requests.slice(since).filter((r) => r.method !== 'GET' && r.path.startsWith('/api/'));

  async function createGroup(server: IbmSecretsManagerServer, name: string): Promise<string> {
    return String((await api(server, 'POST', '/api/v2/secret_groups', { name })).id);
  }

  async function createStore(kind: 'ClusterSecretStore' | 'SecretStore', name: string, spec: Json): Promise<void> {
    const path =
      kind === 'SecretStore'
        ? `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`
        : `/apis/${API_VERSION}/clustersecretstores`;
    await client().request('POST', path, {
      body: { apiVersion: API_VERSION, kind, metadata: { name }, spec: { provider: { ibmSecretsManager: spec } } },
    });
  }

  const copyArgs = (...extra: string[]) => [
    'ibm',
    'copy-to-secondary',
    '--store',
    clusterStore,
    '--cluster',
    '--kubeconfig',
    sharedCluster().kubeconfigPath,
    ...extra,
  ];

  const line = (run: Run, verb: string, what: string) =>
    run.out.find((l) => l.startsWith(verb) && l.slice(verb.length).trimStart().startsWith(what));

  before(async () => {
    primary = await IbmSecretsManagerServer.start({ region: 'us-south' });
    secondary = await IbmSecretsManagerServer.start({ signingKey: primary.signingKey, region: 'eu-de' });
    restored = await IbmSecretsManagerServer.start({ signingKey: primary.signingKey, region: 'eu-gb' });
    primary.contract.addApiKey(API_KEY, 'iam-ServiceId-copy-test');
    primary.contract.addTrustedProfile({
      id: 'Profile-copy',
      name: 'copy-profile',
      subject: `system:serviceaccount:${namespace}:copier`,
    });
    tmp = mkdtempSync(join(tmpdir(), 'ibm-copy-'));

    // The primary: every type, two secret groups, labels and custom metadata.
    const payments = await createGroup(primary, 'payments');
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'arbitrary',
      name: 'api-token',
      payload: values.arbitrary,
      labels: ['tier:gold', 'team:api'],
      custom_metadata: { owner: 'api-team' },
      description: 'the API token',
    });
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'arbitrary',
      name: 'rotated',
      payload: values.changed,
    });
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'username_password',
      name: 'db',
      secret_group_id: payments,
      username: 'app',
      password: values.password,
      labels: ['db'],
    });
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'kv',
      name: 'config',
      secret_group_id: payments,
      data: { token: values.kvToken, retries: 3 },
      custom_metadata: { rotation: 'manual' },
    });
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'imported_cert',
      name: 'web',
      certificate: cert,
      intermediate,
      private_key: values.certKey,
    });
    // Types whose values IBM makes: never copied.
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'iam_credentials',
      name: 'ci',
      api_key: values.apiKey,
    });
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'public_cert',
      name: 'www',
      certificate: cert,
      private_key: values.publicKey,
    });
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'private_cert',
      name: 'internal',
      certificate: cert,
      private_key: values.privateCertKey,
    });
    // The secondary already has one secret, with an old value.
    await api(secondary, 'POST', '/api/v2/secrets', {
      secret_type: 'arbitrary',
      name: 'rotated',
      payload: values.stale,
    });

    await ensureNamespace(client(), namespace);
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ibm-creds' }, stringData: { apikey: API_KEY } },
    });
    await client().request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, {
      body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'copier' } },
    });
    const auth = { apiKeySecretRef: { name: 'ibm-creds', key: 'apikey', namespace } };
    await createStore('ClusterSecretStore', clusterStore, {
      serviceUrl: primary.serviceUrl,
      region: 'us-south',
      iamEndpoint: primary.iamEndpoint,
      requestsPerSecond: 100,
      auth,
      failover: [{ serviceUrl: secondary.serviceUrl, region: 'eu-de' }],
    });
    await createStore('ClusterSecretStore', restoreStore, {
      serviceUrl: restored.serviceUrl,
      region: 'eu-gb',
      iamEndpoint: primary.iamEndpoint,
      requestsPerSecond: 100,
      auth,
    });
    await createStore('SecretStore', 'by-profile', {
      serviceUrl: primary.serviceUrl,
      iamEndpoint: primary.iamEndpoint,
      requestsPerSecond: 100,
      auth: { trustedProfile: { profileName: 'copy-profile', serviceAccountRef: { name: 'copier' } } },
      failover: [{ serviceUrl: secondary.serviceUrl, region: 'eu-de' }],
    });
  });

  after(async () => {
    await Promise.all([primary?.stop(), secondary?.stop(), restored?.stop()]);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    for (const name of [clusterStore, restoreStore])
      await client()
        .request('DELETE', `/apis/${API_VERSION}/clustersecretstores/${name}`)
        .catch(() => undefined);
  });

  it('--dry-run reports what it would write and writes nothing', async () => {
    const mark = secondary.contract.requests.length;
    const run = await cli(...copyArgs('--dry-run'));
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(writes(secondary, mark)).to.deep.equal([]);
    expect(line(run, 'would create', 'secret group payments')).to.be.a('string');
    expect(line(run, 'would create', 'payments/kv/config')).to.be.a('string');
    expect(line(run, 'would update', 'default/arbitrary/rotated (value)')).to.be.a('string');
    expect(run.out.at(-1)).to.match(
      /^dry run, nothing written: copy: 4 created, 1 updated, 0 unchanged, 0 failed; 3 skipped/,
    );
  });

  it('copies the primary into the secondary: created, updated by value, skipped types with a reason', async () => {
    const run = await cli(...copyArgs());
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(run.out[0]).to.match(/^copy from us-south \(127\.0\.0\.1:\d+\) to eu-de \(127\.0\.0\.1:\d+\)$/);
    expect(line(run, 'created', 'secret group payments')).to.be.a('string');
    for (const what of [
      'default/arbitrary/api-token',
      'payments/username_password/db',
      'payments/kv/config',
      'default/imported_cert/web',
    ])
      expect(line(run, 'created', what), what).to.be.a('string');
    expect(line(run, 'updated', 'default/arbitrary/rotated (value)')).to.be.a('string');
    expect(line(run, 'skipped', 'default/iam_credentials/ci (IBM creates its API key')).to.be.a('string');
    expect(line(run, 'skipped', 'default/public_cert/www')).to.be.a('string');
    expect(line(run, 'skipped', 'default/private_cert/internal')).to.be.a('string');
    expect(run.out.at(-1)).to.equal(
      'copy: 4 created, 1 updated, 0 unchanged, 0 failed; 3 skipped (iam_credentials 1, private_cert 1, public_cert 1)',
    );

    const [from, to] = [await contents(primary), await contents(secondary)];
    for (const key of [
      'default/arbitrary/api-token',
      'default/arbitrary/rotated',
      'payments/username_password/db',
      'payments/kv/config',
      'default/imported_cert/web',
    ]) {
      const a = from.get(key) as Json;
      const b = to.get(key) as Json;
      expect(b, key).to.not.equal(undefined);
      for (const field of ['payload', 'username', 'password', 'data', 'certificate', 'intermediate', 'private_key'])
        expect(b[field], `${key} ${field}`).to.deep.equal(a[field]);
      expect(b.labels, key).to.deep.equal(a.labels);
      expect(b.custom_metadata, key).to.deep.equal(a.custom_metadata);
      expect(b.description, key).to.equal(a.description);
      expect(b.id, 'ids differ between instances').to.not.equal(a.id);
    }
    for (const key of ['default/iam_credentials/ci', 'default/public_cert/www', 'default/private_cert/internal'])
      expect(to.has(key), key).to.equal(false);
    // The stale secret got a new version (its old one is kept as previous), not a second secret.
    expect(secondary.contract.versionsOf(String(to.get('default/arbitrary/rotated')?.id))).to.have.length(2);
  });

  it('a second run writes nothing: every secret unchanged; --to names the failover instance', async () => {
    const unknown = await cli(...copyArgs('--to', 'ap-south'));
    expect(unknown.code).to.equal(1);
    expect(unknown.err.join('\n')).to.match(
      /has no failover instance "ap-south" \(it has eu-de \(127\.0\.0\.1:\d+\)\)/,
    );
    const mark = secondary.contract.requests.length;
    const run = await cli(...copyArgs('--to', 'eu-de'));
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(writes(secondary, mark)).to.deep.equal([]);
    expect(run.out.at(-1)).to.match(/^copy: 0 created, 0 updated, 5 unchanged, 0 failed; 3 skipped/);
  });

  it('changed labels and custom metadata are patched without a new version; --groups narrows the copy', async () => {
    const list = (await api(primary, 'GET', '/api/v2/secrets?search=config')).secrets as Json[];
    const config = list.find((s) => s.name === 'config') as Json;
    await api(primary, 'POST', `/api/v2/secrets/${String(config.id)}/versions`, {
      data: { token: values.kvToken, retries: 3 },
      custom_metadata: { owner: 'payments' },
    });
    const mark = secondary.contract.requests.length;
    const run = await cli(...copyArgs('--groups', 'payments'));
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(line(run, 'updated', 'payments/kv/config (metadata)')).to.be.a('string');
    expect(run.out.some((l) => l.includes('default/'))).to.equal(false);
    expect(run.out.at(-1)).to.equal('copy: 0 created, 1 updated, 1 unchanged, 0 failed; 0 skipped');
    expect(writes(secondary, mark).map((r) => `${r.method} ${r.path.replace(/[0-9a-f-]{36}/, 'ID')}`)).to.deep.equal([
      'PATCH /api/v2/secrets/ID/metadata',
    ]);
    const copied = (await contents(secondary)).get('payments/kv/config') as Json;
    expect(copied.custom_metadata).to.deep.equal({ owner: 'payments' });
  });

  it('a secret deleted between the list and its read is skipped with that reason, not failed', async () => {
    const list = (await api(primary, 'GET', '/api/v2/secrets?search=config')).secrets as Json[];
    const config = list.find((s) => s.name === 'config') as Json;
    primary.contract.inject({ status: 404, times: 1, pathPrefix: `/api/v2/secrets/${String(config.id)}` });
    const run = await cli(...copyArgs('--groups', 'payments'));
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(line(run, 'skipped', 'payments/kv/config (deleted while the copy read it)')).to.be.a('string');
    expect(run.out.at(-1)).to.equal('copy: 0 created, 0 updated, 1 unchanged, 0 failed; 1 skipped (kv 1)');
  });

  it('a namespaced store: held to --allowed-endpoints, and logs in with its trusted profile', async () => {
    const base = ['ibm', 'copy-to-secondary', '--store', 'by-profile', '-n', namespace];
    const kube = ['--kubeconfig', sharedCluster().kubeconfigPath];
    const refused = await cli(...base, ...kube, '--dry-run');
    expect(refused.code).to.equal(1);
    expect(refused.err.join('\n')).to.match(/is not allowed/);
    const allowed = [primary.serviceUrl, secondary.serviceUrl].join(',');
    const run = await cli(...base, ...kube, '--allowed-endpoints', allowed, '--dry-run');
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(run.out.at(-1)).to.match(/copy: 0 created, 0 updated, 5 unchanged, 0 failed/);
    expect(primary.contract.requests.some((r) => r.iamId === 'iam-Profile-copy')).to.equal(true);
  });

  it('a secret that cannot be copied is a FAILED line and a non-zero exit; the others are copied', async () => {
    // A username_password secret whose username differs on the secondary: IBM keeps usernames.
    await api(secondary, 'POST', '/api/v2/secrets', {
      secret_type: 'username_password',
      name: 'legacy',
      username: 'old',
      password: values.stale,
    });
    await api(primary, 'POST', '/api/v2/secrets', {
      secret_type: 'username_password',
      name: 'legacy',
      username: 'new',
      password: values.changed,
    });
    const run = await cli(...copyArgs());
    expect(run.code).to.equal(1);
    expect(line(run, 'FAILED', 'default/username_password/legacy (its username differs')).to.be.a('string');
    expect(run.err.join('\n')).to.match(/1 secret\(s\) could not be copied/);
    expect(run.out.at(-1)).to.match(/^copy: 0 created, 0 updated, 5 unchanged, 1 failed; 3 skipped/);
  });

  it('backup --include-store holds the instance secrets encrypted; restore --to-store writes them to another instance', async () => {
    const keyFile = join(tmp, 'backup.key');
    const file = join(tmp, 'ibm.backup');
    await writeFile(keyFile, randomBytes(32));
    const backup = await cli(
      'backup',
      '--out',
      file,
      '--key-file',
      keyFile,
      '--kubeconfig',
      sharedCluster().kubeconfigPath,
      '--include-store',
      `ClusterSecretStore/${clusterStore}`,
      '--no-progress',
    );
    expect(backup.code, backup.err.join('\n')).to.equal(0);
    expect(backup.out.join('\n')).to.match(/6 IBM Cloud Secrets Manager secrets/);
    expect(backup.out.join('\n')).to.match(/skipped ClusterSecretStore\/.*default\/iam_credentials\/ci/);
    const bytes = await readFile(file);
    expect(readHeader(bytes).contents.ibmInstanceSecrets).to.equal(6);
    const text = bytes.toString('latin1');
    for (const value of Object.values(values)) {
      expect(text.includes(value), 'a value in the clear').to.equal(false);
      expect(text.includes(Buffer.from(value).toString('base64')), 'a value in base64').to.equal(false);
    }
    const opened = await openBackup(bytes, { mode: 'key-file', keyFile: await readFile(keyFile) });
    const instance = opened.payload.ibmInstances?.[0];
    expect(instance?.store).to.equal(`ClusterSecretStore/${clusterStore}`);
    expect(instance?.secrets.map((s) => `${s.group}/${s.type}/${s.name}`).sort()).to.deep.equal([
      'default/arbitrary/api-token',
      'default/arbitrary/rotated',
      'default/imported_cert/web',
      'default/username_password/legacy',
      'payments/kv/config',
      'payments/username_password/db',
    ]);
    expect(instance?.skipped.map((s) => s.type).sort()).to.deep.equal([
      'iam_credentials',
      'private_cert',
      'public_cert',
    ]);

    const restoreArgs = [
      'restore',
      '--in',
      file,
      '--key-file',
      keyFile,
      '--kubeconfig',
      sharedCluster().kubeconfigPath,
      '--to-store',
      `ClusterSecretStore/${restoreStore}`,
      '--no-progress',
    ];
    // Without --to-store the secrets are only noted.
    const noted = await cli(...restoreArgs.slice(0, -3), '--dry-run');
    expect(noted.code, [...noted.out, ...noted.err].join('\n')).to.equal(0);
    expect(noted.out).to.include(
      `note: the backup holds 6 secrets of ClusterSecretStore/${clusterStore} (${instance?.instance}); give --to-store to write them into an instance`,
    );
    // Look first: a dry run compares and writes nothing.
    const before = restored.contract.requests.length;
    const dry = await cli(...restoreArgs, '--dry-run');
    expect(dry.code, [...dry.out, ...dry.err].join('\n')).to.equal(0);
    expect(dry.out.at(-1)).to.match(/^dry run, nothing written: IBM restore: 6 created, 0 updated/);
    expect(writes(restored, before)).to.deep.equal([]);

    const restore = await cli(...restoreArgs);
    expect(restore.code, [...restore.out, ...restore.err].join('\n')).to.equal(0);
    expect(restore.out.at(-1)).to.equal(
      'IBM restore: 6 created, 0 updated, 0 unchanged, 0 failed; 3 skipped (iam_credentials 1, private_cert 1, public_cert 1)',
    );
    const [from, to] = [await contents(primary), await contents(restored)];
    expect([...to.keys()].sort()).to.deep.equal(instance?.secrets.map((s) => `${s.group}/${s.type}/${s.name}`).sort());
    for (const [key, b] of to) {
      const a = from.get(key) as Json;
      for (const field of ['payload', 'username', 'password', 'data', 'certificate', 'intermediate', 'private_key'])
        expect(b[field], `${key} ${field}`).to.deep.equal(a[field]);
      expect(b.labels, key).to.deep.equal(a.labels);
      expect(b.custom_metadata, key).to.deep.equal(a.custom_metadata);
    }

    // FROM=TARGET names the included store; one the backup does not hold is refused.
    const unknown = await cli(
      ...restoreArgs.slice(0, -3),
      '--to-store',
      `ClusterSecretStore/not-included=ClusterSecretStore/${restoreStore}`,
    );
    expect(unknown.code).to.equal(1);
    expect(unknown.err.join('\n')).to.match(/the backup holds no secrets of ClusterSecretStore\/not-included/);
    const mark = restored.contract.requests.length;
    const again = await cli(
      ...restoreArgs.slice(0, -3),
      '--to-store',
      `ClusterSecretStore/${clusterStore}=ClusterSecretStore/${restoreStore}`,
    );
    expect(again.code).to.equal(0);
    expect(again.out.at(-1)).to.match(/^IBM restore: 0 created, 0 updated, 6 unchanged, 0 failed/);
    expect(writes(restored, mark)).to.deep.equal([]);
  });

  it('pages through instances with more secrets than one list page', async () => {
    const bulk = await createGroup(primary, 'bulk');
    const n = 205;
    for (let i = 0; i < n; i++)
      await api(primary, 'POST', '/api/v2/secrets', {
        secret_type: 'arbitrary',
        name: `bulk-${String(i).padStart(3, '0')}`,
        secret_group_id: bulk,
        payload: `${values.arbitrary}-${i}`,
      });
    const [pm, sm] = [primary.contract.requests.length, secondary.contract.requests.length];
    const run = await cli(...copyArgs('--groups', 'bulk'));
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(run.out.at(-1)).to.equal(`copy: ${n} created, 0 updated, 0 unchanged, 0 failed; 0 skipped`);
    const listed = (server: IbmSecretsManagerServer, since: number) =>
      server.contract.requests
        .slice(since)
        .filter((r) => r.method === 'GET' && r.path === '/api/v2/secrets')
        .map((r) => r.query.offset);
    expect(listed(primary, pm)).to.deep.equal(['0', '200']);
    expect(listed(secondary, sm)).to.deep.equal(['0']);
    const again = await cli(...copyArgs('--groups', 'bulk'));
    expect(again.out.at(-1)).to.equal(`copy: 0 created, 0 updated, ${n} unchanged, 0 failed; 0 skipped`);
    // The secondary now holds more than a page: its listing pages too, and finds every one (nothing created twice).
    expect(listed(secondary, sm).slice(1)).to.deep.equal(['0', '200']);
  });

  it('an instance that stops answering stops the copy with one clear error, not a FAILED line per secret', async () => {
    // Reads of single secrets at the secondary answer 503 (the list still works).
    secondary.contract.inject({ status: 503, times: 1000, pathPrefix: '/api/v2/secrets/' });
    const run = await cli(...copyArgs('--groups', 'payments'));
    expect(run.code).to.equal(1);
    expect(run.err.join('\n')).to.match(/secret "payments\/.*" at 127\.0\.0\.1:\d+: HTTP 503/);
    expect(run.out.some((l) => l.startsWith('FAILED'))).to.equal(false);
  });

  it('no value appeared in any output', () => {
    const output = allOutput.join('\n');
    for (const value of Object.values(values)) expect(output.includes(value), 'a value in the output').to.equal(false);
  });
});
