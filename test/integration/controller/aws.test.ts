import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import { main } from '../../../src/cli/main.js';
import { KmsEncryptor } from '../../../src/providers/aws-kms/index.js';
import { captureIo } from '../../unit/helpers/index.js';
import { waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  decoded,
  ensureNamespace,
  getSecret,
  listEvents,
  readyOf,
  startOperator,
  waitForReady,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';

describe('AWS backends through the operator (moto)', function () {
  this.timeout(120_000);
  let operator: RunningOperator;
  const namespace = uniqueName('aws');
  const otherNamespace = uniqueName('aws-other');
  const client = () => adminClient(sharedCluster());
  const storePath = (ns: string) => `/apis/${API_VERSION}/namespaces/${ns}/secretstores`;
  // Distinctive values for the leak check at the end.
  const dbPassword = `sm-${uniqueName('pw')}`;
  const paramValue = `ssm-${uniqueName('pw')}`;
  const kmsValue = `kms-${uniqueName('pw')}`;

  const awsSpec = (extra: object = {}) => ({
    region: sharedMoto().region,
    endpoint: sharedMoto().endpoint,
    auth: {
      secretRef: {
        accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id' },
        secretAccessKeySecretRef: { name: 'aws-creds', key: 'secret-access-key' },
      },
    },
    requestsPerSecond: 100 as number | undefined,
    ...extra,
  });

  async function createStore(ns: string, name: string, provider: Record<string, unknown>): Promise<void> {
    await client().request('POST', storePath(ns), {
      body: { apiVersion: API_VERSION, kind: 'SecretStore', metadata: { name }, spec: { provider } },
    });
  }

  before(async () => {
    await installCrds(sharedCluster());
    await sharedMoto().reset();
    for (const ns of [namespace, otherNamespace]) {
      await ensureNamespace(client(), ns);
      await client().request('POST', `/api/v1/namespaces/${ns}/secrets`, {
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'aws-creds' },
          stringData: { 'access-key-id': 'testing', 'secret-access-key': 'testing' },
        },
      });
    }
    const sm = new SecretsManagerClient(sharedMoto().clientConfig());
    await sm.send(
      new CreateSecretCommand({
        Name: 'app/db',
        SecretString: JSON.stringify({ username: 'app', password: dbPassword }),
        Tags: [{ Key: 'team', Value: 'a' }],
      }),
    );
    await sm.send(
      new CreateSecretCommand({ Name: 'app/api-token', SecretString: 'token-1', Tags: [{ Key: 'team', Value: 'a' }] }),
    );
    for (let i = 0; i < 10; i++)
      await sm.send(new CreateSecretCommand({ Name: `fan/key-${i}`, SecretString: `value-${i}` }));
    const ssm = new SSMClient(sharedMoto().clientConfig());
    await ssm.send(new PutParameterCommand({ Name: '/app/db/password', Value: paramValue, Type: 'SecureString' }));
    await ssm.send(new PutParameterCommand({ Name: '/app/db/user', Value: 'app', Type: 'String' }));
    for (const ns of [namespace, otherNamespace]) {
      await createStore(ns, 'sm', { awsSecretsManager: awsSpec() });
      await createStore(ns, 'kms', { awsKms: awsSpec() });
    }
    await createStore(namespace, 'ssm', { awsParameterStore: awsSpec() });
    // A namespace may not borrow the operator's identity unless the admin allows it.
    await createStore(namespace, 'borrowed', {
      awsSecretsManager: { region: sharedMoto().region, endpoint: sharedMoto().endpoint },
    });
    operator = await startOperator(sharedCluster(), { namespaces: [namespace, otherNamespace] });
  });

  after(async () => {
    await operator?.stop();
  });

  it('Secrets Manager: property, whole value, extract, find by prefix and tag', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'sm-app' },
      spec: {
        storeRef: { name: 'sm' },
        refreshInterval: '1s',
        data: [
          { secretKey: 'password', remoteRef: { key: 'app/db', property: 'password' } },
          { secretKey: 'token', remoteRef: { key: 'app/api-token' } },
        ],
        dataFrom: [{ extract: { key: 'app/db' } }],
      },
    });
    const secret = await waitForSecretData(client(), namespace, 'sm-app', (d) => d.password === dbPassword);
    expect(decoded(secret)).to.deep.equal({ password: dbPassword, token: 'token-1', username: 'app' });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'sm-found' },
      spec: { storeRef: { name: 'sm' }, dataFrom: [{ find: { prefix: 'app/', tags: { team: 'a' } } }] },
    });
    const found = await waitForSecretData(client(), namespace, 'sm-found', (d) => d['api-token'] !== undefined);
    expect(decoded(found)['api-token']).to.equal('token-1');
    expect(JSON.parse(decoded(found).db ?? '{}')).to.deep.equal({ username: 'app', password: dbPassword });
  });

  it('Secrets Manager: an update with PutSecretValue reaches the Secret on the next refresh; AWSPREVIOUS reads the old one', async () => {
    const sm = new SecretsManagerClient(sharedMoto().clientConfig());
    await sm.send(new PutSecretValueCommand({ SecretId: 'app/api-token', SecretString: 'token-2' }));
    await waitForSecretData(client(), namespace, 'sm-app', (d) => d.token === 'token-2', 10_000);
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'sm-previous' },
      spec: {
        storeRef: { name: 'sm' },
        data: [{ secretKey: 'token', remoteRef: { key: 'app/api-token', version: 'AWSPREVIOUS' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'sm-previous', (d) => d.token === 'token-1');
  });

  it('Parameter Store: SecureString and find by path', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'ssm-app' },
      spec: {
        storeRef: { name: 'ssm' },
        data: [{ secretKey: 'password', remoteRef: { key: '/app/db/password' } }],
        dataFrom: [{ find: { prefix: '/app/db/' } }],
      },
    });
    const secret = await waitForSecretData(
      client(),
      namespace,
      'ssm-app',
      (d) => d.password === paramValue && d.user === 'app',
    );
    expect(decoded(secret)).to.deep.equal({ password: paramValue, user: 'app' });
  });

  it('KMS: `secretsync encrypt --output yaml` makes a ManagedSecret that syncs; the same ciphertext elsewhere is refused', async () => {
    const kms = new KMSClient(sharedMoto().clientConfig());
    const key = await kms.send(new CreateKeyCommand({ Description: 'secretsync test' }));
    const io = captureIo(`${kmsValue}\n`);
    const env = {
      AWS_REGION: sharedMoto().region,
      AWS_ENDPOINT_URL: sharedMoto().endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    let code: number;
    try {
      code = await main(
        [
          'node',
          'secretsync',
          'encrypt',
          '--key',
          key.KeyMetadata?.KeyId ?? '',
          '--namespace',
          namespace,
          '--name',
          'from-git',
          '--secret-key',
          'api-key',
          '--store',
          'kms',
          '--output',
          'yaml',
        ],
        io,
      );
    } finally {
      process.env = saved;
    }
    expect(code, io.errLines.join('\n')).to.equal(0);
    const yamlText = io.outLines.join('\n');
    expect(yamlText).to.not.contain(kmsValue);
    const ms = parse(yamlText) as ManagedSecret;
    expect(ms.spec.data?.[0]?.ciphertext).to.match(/^secretsync:v1:/);
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`, { body: ms });
    await waitForSecretData(client(), namespace, 'from-git', (d) => d['api-key'] === kmsValue);

    // Copied into another namespace, and into another ManagedSecret: DecryptFailed, no Secret.
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${otherNamespace}/managedsecrets`, {
      body: { ...ms, metadata: { name: 'from-git' } },
    });
    await createManagedSecret(client(), namespace, { metadata: { name: 'copied' }, spec: ms.spec });
    const elsewhere = await waitForReady(client(), otherNamespace, 'from-git', 'False', 'DecryptFailed');
    expect(readyOf(elsewhere)?.message).to.contain('api-key');
    await waitForReady(client(), namespace, 'copied', 'False', 'DecryptFailed');
    expect(await getSecret(client(), otherNamespace, 'from-git')).to.equal(undefined);
    expect(await getSecret(client(), namespace, 'copied')).to.equal(undefined);
  });

  it('client-side decryption: a local store holding only KMS ciphertexts syncs plaintext into the Secret', async () => {
    const kms = new KMSClient(sharedMoto().clientConfig());
    const key = await kms.send(new CreateKeyCommand({ Description: 'local store values' }));
    const encryptor = new KmsEncryptor(kms);
    // Namespace scope: the ciphertext lives in the store, not in one ManagedSecret.
    const sealed = await encryptor.encrypt(kmsValue, {
      keyId: key.KeyMetadata?.KeyId ?? '',
      scope: 'namespace',
      binding: { namespace },
    });
    const fixture = await createLocalStore(client(), namespace, 'local-kms-master');
    try {
      await fixture.store.put('sealed/api', { token: sealed });
      await client().request('POST', storePath(namespace), {
        body: {
          apiVersion: API_VERSION,
          kind: 'SecretStore',
          metadata: { name: 'local-kms' },
          spec: {
            provider: {
              local: {
                path: fixture.dir,
                masterKeySecretRef: { name: 'local-kms-master' },
                decrypt: { kms: awsSpec({ requestsPerSecond: undefined }) },
              },
            },
          },
        },
      });
      await createManagedSecret(client(), namespace, {
        metadata: { name: 'from-sealed-store' },
        spec: {
          storeRef: { name: 'local-kms' },
          data: [{ secretKey: 'token', remoteRef: { key: 'sealed/api', property: 'token' } }],
        },
      });
      await waitForSecretData(client(), namespace, 'from-sealed-store', (d) => d.token === kmsValue);
      const onDisk = readdirSync(fixture.dir).map((f) => readFileSync(join(fixture.dir, f), 'utf8'));
      expect(onDisk.join('\n')).to.not.contain(kmsValue);
    } finally {
      fixture.cleanup();
    }
  });

  it('a namespaced store without auth may not use the operator identity (flag off)', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'borrower' },
      spec: { storeRef: { name: 'borrowed' }, data: [{ secretKey: 'x', remoteRef: { key: 'app/api-token' } }] },
    });
    const ms = await waitForReady(client(), namespace, 'borrower', 'False', 'StoreNotReady');
    expect(readyOf(ms)?.message).to.match(/operator's identity/);
    await waitFor(
      'the store to report InvalidProviderConfig',
      async () => {
        const store = await client().get<{ status?: { conditions?: { type: string; reason: string }[] } }>(
          `${storePath(namespace)}/borrowed`,
        );
        return store.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'InvalidProviderConfig')
          ? true
          : undefined;
      },
      15_000,
    );
  });

  it('200 ManagedSecrets over 10 Secrets Manager keys cost about 10 backend reads', async () => {
    // The one-second refresher above would add its own reads to the count.
    await client().request('DELETE', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/sm-app`);
    await new Promise((r) => setTimeout(r, 1_500));
    const before = await smReads(operator);
    for (let i = 0; i < 200; i++) {
      await createManagedSecret(client(), otherNamespace, {
        metadata: { name: `fan-${i}` },
        spec: { storeRef: { name: 'sm' }, data: [{ secretKey: 'v', remoteRef: { key: `fan/key-${i % 10}` } }] },
      });
    }
    await waitForSecretData(client(), otherNamespace, 'fan-199', (d) => d.v === 'value-9', 60_000);
    await waitFor(
      'all 200 to be Ready',
      async () => {
        const list = await client().list<ManagedSecret>(
          `/apis/${API_VERSION}/namespaces/${otherNamespace}/managedsecrets`,
        );
        return list.items.filter((m) => m.metadata.name.startsWith('fan-') && readyOf(m)?.status === 'True').length ===
          200
          ? true
          : undefined;
      },
      60_000,
      500,
    );
    const after = await smReads(operator);
    const reads = after.secrets - before.secrets;
    expect(reads, JSON.stringify(after.calls)).to.be.at.least(10);
    expect(reads, JSON.stringify(after.calls)).to.be.at.most(12);
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
    for (const value of [dbPassword, paramValue, kmsValue]) {
      for (const [where, text] of Object.entries({ logs, events, statuses, metrics }))
        expect(text, where).to.not.contain(value);
    }
  });
});

/** Secrets read from Secrets Manager, counted from the provider metric: a batch counts its secrets, not its calls. */
async function smReads(operator: RunningOperator): Promise<{ secrets: number; calls: Record<string, number> }> {
  const calls: Record<string, number> = {};
  for (const v of (await operator.metrics.providerRequests.get()).values) {
    if (v.labels.provider !== 'awsSecretsManager') continue;
    const op = String(v.labels.operation);
    calls[op] = (calls[op] ?? 0) + v.value;
  }
  const refsRead = (await operator.metrics.fetchCache.get()).values.find((v) => v.labels.result === 'miss')?.value ?? 0;
  return { secrets: refsRead, calls };
}
