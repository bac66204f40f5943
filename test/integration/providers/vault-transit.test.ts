// Vault transit ciphertexts against a real Vault server (the shared dev-mode
// VaultServer of tools/testenv) and the real control plane: `secretsync encrypt
// --transit` with the vault CLI's environment, decryption by the operator into
// a Secret through a store whose token has only the documented policy, the
// derivation context really binding a ciphertext to its place (copied to
// another namespace: DecryptFailed and no Secret), tampering, a key without
// derivation refused with its own reason, values fetched from KV,
// `reencrypt --transit` after a key rotation, and the CLI over TLS.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import { main } from '../../../src/cli/main.js';
import { parseTransitCiphertext, transitContext } from '../../../src/crypto/transit-ciphertext.js';
import { captureIo } from '../../unit/helpers/index.js';
import { VaultServer } from '../../../tools/testenv/index.js';
import { releaseTempDir, trackTempDir, waitFor } from '../../../tools/testenv/processes.js';
import { sharedCluster, sharedVault, uniqueName } from '../env.js';
import { waitForStoreReady } from '../security/tenancy-helpers.js';
import {
  adminClient,
  createManagedSecret,
  decoded,
  ensureNamespace,
  getSecret,
  listEvents,
  readyOf,
  startOperator,
  testStorePolicy,
  waitForReady,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';

describe('Vault transit ciphertexts through the CLI and the operator (real Vault)', function () {
  this.timeout(120_000);
  let vault: VaultServer;
  let operator: RunningOperator;
  // Engines and paths of their own on the shared Vault.
  const mount = uniqueName('transit');
  const kvPath = uniqueName('team');
  const namespace = uniqueName('transit');
  const otherNamespace = uniqueName('transit-other');
  const client = () => adminClient(sharedCluster());
  const value = `transit-${uniqueName('pw')}`;
  const kvValue = `kv-${uniqueName('pw')}`;

  const must = (method: string, path: string, body?: unknown) => vault.must(method, path, body);

  /** `secretsync …` as a user runs it, with the vault CLI's environment. */
  async function cli(args: string[], stdin: string, env: Record<string, string> = {}) {
    const io = captureIo(stdin);
    const saved = process.env;
    process.env = { ...saved, ...vault.env(), ...env };
    let code: number;
    try {
      code = await main(['node', 'secretsync', ...args], io);
    } finally {
      process.env = saved;
    }
    expect(io.errLines.join('\n')).to.not.include(value);
    return { code, out: io.outLines.join('\n'), err: io.errLines.join('\n') };
  }

  async function createVaultStore(
    ns: string,
    name: string,
    key: string,
    tokenSecret = 'vault-token',
    requestsPerSecond?: number,
  ): Promise<void> {
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${ns}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name },
        spec: {
          provider: {
            vault: {
              server: vault.address,
              auth: { tokenSecretRef: { name: tokenSecret, key: 'token' } },
              decrypt: { transit: { mount, key } },
              ...(requestsPerSecond !== undefined ? { requestsPerSecond } : {}),
            },
          },
        },
      },
    });
  }

  before(async () => {
    vault = await sharedVault();
    await vault.enableEngine(mount, 'transit');
    await must('POST', `${mount}/keys/secretsync`, { derived: true });
    await must('POST', `${mount}/keys/plain`, {});
    // The stores get exactly the policy docs/ciphertext-format.md documents (and a KV read for the KV test).
    await must('PUT', `sys/policies/acl/${mount}`, {
      policy: [
        `path "${mount}/keys/secretsync" { capabilities = ["read"] }`,
        `path "${mount}/decrypt/secretsync" { capabilities = ["update"] }`,
        `path "${mount}/keys/plain" { capabilities = ["read"] }`,
        `path "${mount}/decrypt/plain" { capabilities = ["update"] }`,
        `path "secret/data/${kvPath}/*" { capabilities = ["read"] }`,
      ].join('\n'),
    });
    const token = (await must('POST', 'auth/token/create', { policies: [mount], ttl: '1h' })) as {
      auth: { client_token: string };
    };
    for (const ns of [namespace, otherNamespace]) {
      await ensureNamespace(client(), ns);
      await client().request('POST', `/api/v1/namespaces/${ns}/secrets`, {
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'vault-token' },
          stringData: { token: token.auth.client_token },
        },
      });
      await createVaultStore(ns, 'vault', 'secretsync');
    }
    await createVaultStore(namespace, 'vault-plain', 'plain');
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace, otherNamespace],
      storePolicy: testStorePolicy([vault.address]),
    });
  });

  after(async () => {
    await operator?.stop();
  });

  it('encrypt --transit makes a ManagedSecret the operator decrypts into a Secret, only where it is bound', async () => {
    const r = await cli(
      [
        'encrypt',
        '--transit',
        '--mount',
        mount,
        '--key',
        'secretsync',
        '--namespace',
        namespace,
        '--name',
        'db',
        '--secret-key',
        'password',
        '--output',
        'yaml',
      ],
      `${value}\n`,
    );
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.not.include(value);
    const ms = parse(r.out) as ManagedSecret;
    expect(ms.spec.storeRef.name).to.equal('vault');
    const ciphertext = ms.spec.data?.[0]?.ciphertext ?? '';
    expect(parseTransitCiphertext(ciphertext)).to.include({ scope: 'strict', key: 'secretsync', keyVersion: 1 });
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`, { body: ms });
    await waitForSecretData(client(), namespace, 'db', (d) => d.password === value);

    // The same ManagedSecret copied into another namespace (with its own store on the same key), and under another name.
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${otherNamespace}/managedsecrets`, {
      body: { ...ms, metadata: { name: 'db' } },
    });
    await createManagedSecret(client(), namespace, { metadata: { name: 'db-copy' }, spec: ms.spec });
    const elsewhere = await waitForReady(client(), otherNamespace, 'db', 'False', 'DecryptFailed');
    expect(readyOf(elsewhere)?.message).to.include('password').and.include('scope strict');
    await waitForReady(client(), namespace, 'db-copy', 'False', 'DecryptFailed');
    expect(await getSecret(client(), otherNamespace, 'db')).to.equal(undefined);
    expect(await getSecret(client(), namespace, 'db-copy')).to.equal(undefined);
  });

  it('through one ClusterSecretStore (one Vault token), a namespace ciphertext still decrypts only in its namespace', async () => {
    const storeName = uniqueName('transit-cluster');
    await client().request('POST', `/apis/${API_VERSION}/clustersecretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ClusterSecretStore',
        metadata: { name: storeName },
        spec: {
          provider: {
            vault: {
              server: vault.address,
              auth: { tokenSecretRef: { name: 'vault-token', key: 'token', namespace } },
              decrypt: { transit: { mount, key: 'secretsync' } },
            },
          },
          conditions: [{ namespaces: [namespace, otherNamespace] }],
        },
      },
    });
    const r = await cli(
      [
        'encrypt',
        '--transit',
        '--mount',
        mount,
        '--key',
        'secretsync',
        '--scope',
        'namespace',
        '--namespace',
        namespace,
      ],
      value,
    );
    expect(r.code, r.err).to.equal(0);
    const spec: ManagedSecret['spec'] = {
      storeRef: { kind: 'ClusterSecretStore', name: storeName },
      data: [{ secretKey: 'password', ciphertext: r.out }],
    };
    await createManagedSecret(client(), namespace, { metadata: { name: 'via-cluster' }, spec });
    await createManagedSecret(client(), otherNamespace, { metadata: { name: 'via-cluster' }, spec });
    await waitForSecretData(client(), namespace, 'via-cluster', (d) => d.password === value);
    const refused = await waitForReady(client(), otherNamespace, 'via-cluster', 'False', 'DecryptFailed');
    expect(readyOf(refused)?.message).to.include('scope namespace').and.not.include(value);
    expect(await getSecret(client(), otherNamespace, 'via-cluster')).to.equal(undefined);
    await client().request('DELETE', `/apis/${API_VERSION}/clustersecretstores/${storeName}`);
  });

  it('a tampered transit ciphertext fails with DecryptFailed and writes nothing', async () => {
    const r = await cli(
      [
        'encrypt',
        '--transit',
        '--mount',
        mount,
        '--key',
        'secretsync',
        '--scope',
        'namespace',
        '--namespace',
        namespace,
      ],
      value,
    );
    expect(r.code, r.err).to.equal(0);
    const c = parseTransitCiphertext(r.out);
    const bytes = Buffer.from(c.vault.slice('vault:v1:'.length), 'base64');
    bytes[20] = (bytes[20] as number) ^ 0x01;
    const tampered = r.out.replace(c.vault, `vault:v1:${bytes.toString('base64')}`);
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'tampered' },
      spec: { storeRef: { name: 'vault' }, data: [{ secretKey: 'token', ciphertext: tampered }] },
    });
    const ms = await waitForReady(client(), namespace, 'tampered', 'False', 'DecryptFailed');
    expect(readyOf(ms)?.message).to.include('Vault refused to decrypt it');
    expect(await getSecret(client(), namespace, 'tampered')).to.equal(undefined);
  });

  it('decrypts transit ciphertexts held in KV entries, bound to the Secret key they land in', async () => {
    const r = await cli(
      [
        'encrypt',
        '--transit',
        '--mount',
        mount,
        '--key',
        'secretsync',
        '--scope',
        'namespace',
        '--namespace',
        namespace,
      ],
      kvValue,
    );
    expect(r.code, r.err).to.equal(0);
    await must('POST', `secret/data/${kvPath}/api`, { data: { token: r.out, plain: 'not-encrypted' } });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'from-kv' },
      spec: { storeRef: { name: 'vault' }, dataFrom: [{ extract: { key: `${kvPath}/api` } }] },
    });
    await waitForSecretData(client(), namespace, 'from-kv', (d) => d.token === kvValue && d.plain === 'not-encrypted');
  });

  it('refuses a transit key without derivation, in the CLI and in the operator, with a clear reason', async () => {
    const r = await cli(
      [
        'encrypt',
        '--transit',
        '--mount',
        mount,
        '--key',
        'plain',
        '--namespace',
        namespace,
        '--name',
        'x',
        '--secret-key',
        'y',
      ],
      value,
    );
    expect(r.code).to.not.equal(0);
    expect(r.err).to.include('without key derivation').and.include('derived=true');
    // A ciphertext Vault made with the plain key (context ignored) must not be trusted by the store.
    const made = (await must('POST', `${mount}/encrypt/plain`, {
      plaintext: Buffer.from(value).toString('base64'),
    })) as { data: { ciphertext: string } };
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'plain-key' },
      spec: {
        storeRef: { name: 'vault-plain' },
        data: [{ secretKey: 'v', ciphertext: `secretsync:v1:transit:cluster:plain:${made.data.ciphertext}` }],
      },
    });
    const ms = await waitForReady(client(), namespace, 'plain-key', 'False', 'TransitKeyNotDerived');
    expect(readyOf(ms)?.message).to.include('derived=true');
    expect(await getSecret(client(), namespace, 'plain-key')).to.equal(undefined);
    // The store's own health check says so too, before any ManagedSecret needs the key.
    const store = await waitForStoreReady(client(), namespace, 'vault-plain', 20_000, (c) => c.status === 'False');
    expect(store.message).to.include('without key derivation');
    const good = await waitForStoreReady(client(), namespace, 'vault', 20_000, (c) => c.status === 'True');
    expect(good.reason).to.equal('Valid');
  });

  it('a store policy without read on the key is PermissionDenied, naming the path the policy needs', async () => {
    await must('PUT', `sys/policies/acl/${mount}-decrypt-only`, {
      policy: `path "${mount}/decrypt/secretsync" { capabilities = ["update"] }`,
    });
    const token = (await must('POST', 'auth/token/create', { policies: [`${mount}-decrypt-only`], ttl: '1h' })) as {
      auth: { client_token: string };
    };
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'decrypt-only-token' },
        stringData: { token: token.auth.client_token },
      },
    });
    await createVaultStore(namespace, 'decrypt-only', 'secretsync', 'decrypt-only-token');
    const r = await cli(
      [
        'encrypt',
        '--transit',
        '--mount',
        mount,
        '--key',
        'secretsync',
        '--scope',
        'namespace',
        '--namespace',
        namespace,
      ],
      value,
    );
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'decrypt-only' },
      spec: { storeRef: { name: 'decrypt-only' }, data: [{ secretKey: 'v', ciphertext: r.out }] },
    });
    const ms = await waitForReady(client(), namespace, 'decrypt-only', 'False', 'PermissionDenied');
    expect(readyOf(ms)?.message)
      .to.include(`"read" on ${mount}/keys/secretsync`)
      .and.not.include(token.auth.client_token);
    expect(await getSecret(client(), namespace, 'decrypt-only')).to.equal(undefined);
  });

  it('reencrypt --transit rewraps to the newest key version; the rewrapped ciphertext still syncs', async () => {
    const bind = ['--namespace', namespace, '--name', 'rotated', '--secret-key', 'password'];
    const first = await cli(['encrypt', '--transit', '--mount', mount, '--key', 'secretsync', ...bind], value);
    expect(first.code, first.err).to.equal(0);
    await must('POST', `${mount}/keys/secretsync/rotate`);
    const rewrapped = await cli(
      ['reencrypt', '--transit', '--mount', mount, '--key', 'secretsync', ...bind, '--no-progress'],
      `${first.out}\n`,
    );
    expect(rewrapped.code, rewrapped.err).to.equal(0);
    const c = parseTransitCiphertext(rewrapped.out);
    expect(c).to.include({ scope: 'strict', key: 'secretsync', keyVersion: 2 });
    // Vault agrees: it decrypts the new ciphertext in the context of the binding, and the value is the same.
    const context = transitContext('strict', { namespace, managedSecret: 'rotated', secretKey: 'password' });
    const plain = (await must('POST', `${mount}/decrypt/secretsync`, { ciphertext: c.vault, context })) as {
      data: { plaintext: string };
    };
    expect(Buffer.from(plain.data.plaintext, 'base64').toString('utf8')).to.equal(value);
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'rotated' },
      spec: { storeRef: { name: 'vault' }, data: [{ secretKey: 'password', ciphertext: rewrapped.out }] },
    });
    await waitForSecretData(client(), namespace, 'rotated', (d) => d.password === value);
  });

  it('50 ManagedSecrets sharing one namespace-scoped ciphertext cost one Vault decrypt', async () => {
    const r = await cli(
      [
        'encrypt',
        '--transit',
        '--mount',
        mount,
        '--key',
        'secretsync',
        '--scope',
        'namespace',
        '--namespace',
        namespace,
      ],
      value,
    );
    expect(r.code, r.err).to.equal(0);
    const before = await transitCalls(operator);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        createManagedSecret(client(), namespace, {
          metadata: { name: `shared-${i}` },
          spec: { storeRef: { name: 'vault' }, data: [{ secretKey: `k${i % 5}`, ciphertext: r.out }] },
        }),
      ),
    );
    await waitFor(
      'all 50 Secrets',
      async () => {
        const list = await client().list<ManagedSecret>(`/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`);
        const ready = list.items.filter((m) => m.metadata.name.startsWith('shared-') && readyOf(m)?.status === 'True');
        return ready.length === 50 ? true : undefined;
      },
      60_000,
      200,
    );
    const elapsedMs = performance.now() - started;
    const after = await transitCalls(operator);
    const decrypts = (after['transit.decrypt'] ?? 0) - (before['transit.decrypt'] ?? 0);
    console.log(
      `      50 ManagedSecrets, one shared transit ciphertext: ${decrypts} Vault decrypt(s), ready in ${Math.round(elapsedMs)} ms`,
    );
    expect(decrypts, JSON.stringify(after)).to.equal(1);
    expect(decoded(await getSecret(client(), namespace, 'shared-49'))).to.deep.equal({ k4: value });
  });

  it('40 ciphertexts of one ManagedSecret cost one batch request under a tight budget; a misplaced item fails alone', async () => {
    const N = 40;
    const ciphertexts: string[] = [];
    for (let i = 0; i < N; i++) {
      const r = await cli(
        [
          'encrypt',
          '--transit',
          '--mount',
          mount,
          '--key',
          'secretsync',
          '--namespace',
          namespace,
          '--name',
          'many',
          '--secret-key',
          `k${i}`,
        ],
        `${value}-${i}`,
      );
      expect(r.code, r.err).to.equal(0);
      ciphertexts.push(r.out);
    }
    // A budget of 2 requests a second (burst 4): one request per value would take about 18 s.
    await createVaultStore(namespace, 'vault-slow', 'secretsync', 'vault-token', 2);
    await waitForStoreReady(client(), namespace, 'vault-slow', 20_000, (c) => c.status === 'True');
    const before = await transitCalls(operator);
    const started = performance.now();
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'many' },
      spec: {
        storeRef: { name: 'vault-slow' },
        data: ciphertexts.map((ciphertext, i) => ({ secretKey: `k${i}`, ciphertext })),
      },
    });
    const secret = await waitForSecretData(client(), namespace, 'many', (d) => Object.keys(d).length === N, 30_000);
    const elapsedMs = performance.now() - started;
    const decrypts = ((await transitCalls(operator))['transit.decrypt'] ?? 0) - (before['transit.decrypt'] ?? 0);
    console.log(
      `      ${N} transit ciphertexts of one ManagedSecret: ${decrypts} Vault decrypt request(s), synced in ${Math.round(elapsedMs)} ms`,
    );
    expect(decrypts).to.be.at.least(1).and.at.most(2);
    expect(decoded(secret).k39).to.equal(`${value}-39`);

    // One item bound to another secret key, in a batch with two good ones: Vault refuses that item only,
    // and the ManagedSecret says which (no Secret is written: a sync is all or nothing).
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'many-bad' },
      spec: {
        storeRef: { name: 'vault-slow' },
        data: [
          {
            secretKey: 'a',
            ciphertext: (
              await cli(
                [
                  'encrypt',
                  '--transit',
                  '--mount',
                  mount,
                  '--key',
                  'secretsync',
                  '--namespace',
                  namespace,
                  '--name',
                  'many-bad',
                  '--secret-key',
                  'a',
                ],
                'x1',
              )
            ).out,
          },
          { secretKey: 'b', ciphertext: ciphertexts[0] ?? '' },
          {
            secretKey: 'c',
            ciphertext: (
              await cli(
                [
                  'encrypt',
                  '--transit',
                  '--mount',
                  mount,
                  '--key',
                  'secretsync',
                  '--namespace',
                  namespace,
                  '--name',
                  'many-bad',
                  '--secret-key',
                  'c',
                ],
                'x3',
              )
            ).out,
          },
        ],
      },
    });
    const bad = await waitForReady(client(), namespace, 'many-bad', 'False', 'DecryptFailed');
    expect(readyOf(bad)?.message).to.include('secret key "b"').and.not.include('secret key "a"');
    expect(await getSecret(client(), namespace, 'many-bad')).to.equal(undefined);
  });

  it('never lets a value reach the logs, Events, status or metrics', async () => {
    const events = JSON.stringify([
      ...(await listEvents(client(), namespace)),
      ...(await listEvents(client(), otherNamespace)),
    ]);
    const statuses = JSON.stringify(
      [
        ...(await client().list(`/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`)).items,
        ...(await client().list(`/apis/${API_VERSION}/namespaces/${otherNamespace}/managedsecrets`)).items,
      ].map((i) => (i as { status?: unknown }).status),
    );
    const logs = operator.logs.join('\n');
    const metrics = await operator.scrape();
    expect(events).to.contain('DecryptFailed');
    for (const text of [events, statuses, logs, metrics]) {
      expect(text).to.not.contain(value);
      expect(text).to.not.contain(kvValue);
      expect(text).to.not.contain(Buffer.from(value).toString('base64'));
    }
    expect(metrics).to.match(/transit\.decrypt/);
  });
});

describe('secretsync encrypt --transit over TLS (VAULT_CACERT, real Vault)', function () {
  this.timeout(120_000);
  let vault: VaultServer;

  before(async () => {
    vault = await VaultServer.start({ tls: true });
  });

  after(async () => {
    await vault?.stop();
  });

  async function encrypt(env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
    const io = captureIo('tls-value-1234');
    const saved = process.env;
    process.env = { ...saved, VAULT_ADDR: vault.address, ...env };
    try {
      const code = await main(['node', 'secretsync', 'encrypt', '--transit', '--key', 'k', '--scope', 'cluster'], io);
      return { code, out: io.outLines.join('\n'), err: io.errLines.join('\n') };
    } finally {
      process.env = saved;
    }
  }

  it('trusts Vault through VAULT_CACERT, and refuses it without (the token in ~/.vault-token)', async () => {
    const ca = vault.env().VAULT_CACERT ?? '';
    // Set up transit with the CLI's own connection path: a token file in a fake home, as `vault login` leaves it.
    const home = mkdtempSync(join(tmpdir(), 'secretsync-vault-home-'));
    trackTempDir(home);
    writeFileSync(join(home, '.vault-token'), `${vault.rootToken}\n`);
    await vault.enableEngine('transit', 'transit');
    await vault.must('POST', 'transit/keys/k', { derived: true });

    const trusted = await encrypt({ VAULT_CACERT: ca, HOME: home, VAULT_TOKEN: '' });
    expect(trusted.code, trusted.err).to.equal(0);
    expect(parseTransitCiphertext(trusted.out)).to.include({ scope: 'cluster', key: 'k' });

    const untrusted = await encrypt({ VAULT_CACERT: '', HOME: home, VAULT_TOKEN: '' });
    expect(untrusted.code).to.equal(1);
    expect(untrusted.err, untrusted.err).to.match(
      /TLS failed \(\w+\): Vault's certificate is not trusted.*VAULT_CACERT/,
    );
    expect(untrusted.err).to.not.include(vault.rootToken);
    releaseTempDir(home);
  });
});

/** The operator's Vault requests so far, by operation. */
async function transitCalls(operator: RunningOperator): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const v of (await operator.metrics.providerRequests.get()).values) {
    if (v.labels.provider !== 'vault') continue;
    const op = String(v.labels.operation);
    calls[op] = (calls[op] ?? 0) + v.value;
  }
  return calls;
}
