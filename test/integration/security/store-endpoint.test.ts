// Threat: "make the operator call anywhere" (SSRF). Whoever may write a
// SecretStore in a namespace names the endpoint the operator sends signed
// requests to, from its own network position: an internal service, a metadata
// endpoint, a host that collects the requests. The target here is an HTTP
// server the test runs on 127.0.0.1, posing as Secrets Manager. A namespaced
// store naming it as its endpoint, as a failover target or as decrypt.kms's
// endpoint is refused (EndpointNotAllowed) and the server receives not one
// request; once the admin lists it in --allowed-endpoints it is used; a
// ClusterSecretStore (the admin's own) may name it without any list.
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { tmpdir } from 'node:os';
import { API_VERSION } from '../../../src/api/types.js';
import { KmsEncryptor } from '../../../src/providers/aws-kms/index.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  ensureNamespace,
  getSecret,
  readyOf,
  startOperator,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';
import {
  awsCredsAuth,
  createAwsCreds,
  createStore,
  fakeAwsEndpoint,
  secretsManagerAnswer,
  waitForOutcome,
  waitForStoreReady,
  type FakeAwsEndpoint,
} from './tenancy-helpers.js';

describe('security: a namespaced store cannot make the operator call anywhere (SSRF)', function () {
  this.timeout(120_000);
  const namespace = uniqueName('sec-ssrf');
  const clusterStoreName = uniqueName('sec-ssrf-css');
  const client = () => adminClient(sharedCluster());
  const served = `internal-${uniqueName('v')}`;
  let target: FakeAwsEndpoint;
  /** An allowed endpoint that is down: the primary of the failover store, so a failover would be taken. */
  let down: FakeAwsEndpoint;
  let fixture: LocalStoreFixture | undefined;
  let operator: RunningOperator | undefined;

  before(async () => {
    target = await fakeAwsEndpoint(secretsManagerAnswer(served));
    down = await fakeAwsEndpoint(() => ({ status: 503, body: '{"__type":"ServiceUnavailableException"}' }));
    await ensureNamespace(client(), namespace);
    await createAwsCreds(client(), namespace);
    const region = sharedMoto().region;
    await createStore(client(), namespace, 'direct', {
      awsSecretsManager: { region, endpoint: target.url, auth: awsCredsAuth() },
    });
    await createStore(client(), namespace, 'via-failover', {
      awsSecretsManager: { region, endpoint: down.url, auth: awsCredsAuth(), failover: [{ endpoint: target.url }] },
    });
    // A local store whose values are KMS ciphertexts, decrypted at decrypt.kms's endpoint: the target.
    const kms = new KMSClient(sharedMoto().clientConfig());
    const key = await kms.send(new CreateKeyCommand({ Description: 'ssrf test' }));
    const sealed = await new KmsEncryptor(kms).encrypt('sealed-value', {
      keyId: key.KeyMetadata?.KeyId ?? '',
      scope: 'namespace',
      binding: { namespace },
    });
    kms.destroy();
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('sealed', { token: sealed });
    await createStore(client(), namespace, 'via-kms', {
      local: {
        path: fixture.dir,
        masterKeySecretRef: { name: 'master-key' },
        decrypt: { kms: { region, endpoint: target.url, auth: awsCredsAuth() } },
      },
    });
    for (const [name, store, key] of [
      ['direct', 'direct', 'app/db'],
      ['via-failover', 'via-failover', 'app/db'],
      ['via-kms', 'via-kms', 'sealed'],
    ] as const)
      await createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: {
          storeRef: { name: store },
          refreshInterval: '1h',
          data: [{ secretKey: 'v', remoteRef: { key, ...(store === 'via-kms' ? { property: 'token' } : {}) } }],
        },
      });
  });

  afterEach(async () => {
    await operator?.stop();
    operator = undefined;
  });

  after(async () => {
    await client()
      .request('DELETE', `/apis/${API_VERSION}/clustersecretstores/${clusterStoreName}`)
      .catch(() => undefined);
    await target?.close();
    await down?.close();
    fixture?.cleanup();
  });

  it('endpoint, failover endpoint, decrypt.kms endpoint: EndpointNotAllowed, and the target gets no request', async () => {
    // The admin allows moto and the (down) primary of the failover store, not the target.
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: { allowedEndpoints: [sharedMoto().endpoint, down.url], localStoreRoot: tmpdir() },
    });
    const outcomes = await Promise.all(
      ['direct', 'via-failover', 'via-kms'].map((name) =>
        waitForOutcome(client(), namespace, name, 30_000).then((ms) => ({ name, ready: readyOf(ms) })),
      ),
    );
    const stores = await Promise.all(
      ['direct', 'via-failover', 'via-kms'].map((name) => waitForStoreReady(client(), namespace, name)),
    );
    // The whole point: not one byte reached the target, from a sync or from a store check.
    expect(
      target.requests.map((r) => r.target || r.url),
      'requests the SSRF target received',
    ).to.deep.equal([]);
    const fields: Record<string, string> = {
      direct: 'spec.provider.awsSecretsManager.endpoint',
      'via-failover': 'spec.provider.awsSecretsManager.failover[0].endpoint',
      'via-kms': 'spec.provider.local.decrypt.kms.endpoint',
    };
    for (const { name, ready } of outcomes) {
      expect(ready?.status, `${name}: ${ready?.message}`).to.equal('False');
      expect(ready?.reason, `${name}: ${ready?.message}`).to.equal('EndpointNotAllowed');
      expect(ready?.message, name).to.contain(fields[name]).and.contain(target.url);
      expect(await getSecret(client(), namespace, name), name).to.equal(undefined);
    }
    for (const store of stores) expect(store).to.include({ status: 'False', reason: 'EndpointNotAllowed' });
  });

  it('a ClusterSecretStore (the admin’s) may name the same endpoint without any list', async () => {
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: { allowedEndpoints: [], localStoreRoot: undefined },
    });
    const before = target.requests.length;
    await client().request('POST', `/apis/${API_VERSION}/clustersecretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ClusterSecretStore',
        metadata: { name: clusterStoreName },
        spec: {
          provider: {
            awsSecretsManager: { region: sharedMoto().region, endpoint: target.url, auth: awsCredsAuth(namespace) },
          },
          conditions: [{ namespaces: [namespace] }],
        },
      },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'from-cluster-store' },
      spec: {
        storeRef: { kind: 'ClusterSecretStore', name: clusterStoreName },
        data: [{ secretKey: 'v', remoteRef: { key: 'app/db' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'from-cluster-store', (d) => d.v === served, 20_000);
    expect(target.requests.length).to.be.greaterThan(before);
    // The namespaced store stays refused under the same operator.
    const direct = readyOf(await waitForOutcome(client(), namespace, 'direct'));
    expect(direct?.reason).to.equal('EndpointNotAllowed');
  });

  it('once the admin lists the endpoint (--allowed-endpoints), the namespaced store uses it', async () => {
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: { allowedEndpoints: [sharedMoto().endpoint, down.url, target.url], localStoreRoot: tmpdir() },
    });
    const before = target.requests.length;
    await waitForSecretData(client(), namespace, 'direct', (d) => d.v === served, 20_000);
    const reads = target.requests.slice(before).filter((r) => /GetSecretValue$/.test(r.target));
    expect(reads, 'reads the now allowed endpoint received').to.not.deep.equal([]);
    await waitForStoreReady(client(), namespace, 'direct', 20_000, (c) => c.status === 'True');
  });
});
