// What namespaced SecretStores may reach, against moto and real directories:
// a custom endpoint only when --allowed-endpoints covers it (every endpoint
// field: the block's, failover's, decrypt.kms's), a local directory only
// inside --local-store-root (no `..`, no symbolic link out). Allowed stores
// work; ClusterSecretStores are not limited.
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AwsSecretsManagerProviderSpec, ProviderSpec, SecretStore } from '../../../src/api/types.js';
import { LocalStore } from '../../../src/providers/local/store.js';
import { StorePolicyError, type ProviderClient, type StorePolicy } from '../../../src/providers/provider.js';
import { providerFor } from '../../../src/providers/registry.js';
import { rejectionOf } from '../../unit/helpers/index.js';
import { sharedMoto } from '../env.js';
import { awsClusterStore, memoryContext } from './aws-context.js';

const NAMESPACE = 'team-policy';

function secretStore(provider: ProviderSpec): SecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name: 'policy', namespace: NAMESPACE },
    spec: { provider },
  };
}

describe('store policy: namespaced stores against moto and real directories', () => {
  const masterKey = randomBytes(32);
  // The namespace's own Secrets: AWS keys for moto and a local store's master key.
  const secrets = {
    [`${NAMESPACE}/aws`]: { id: 'testing', secret: 'testing' },
    [`${NAMESPACE}/master-key`]: { 'master-key': masterKey.toString('base64') },
    'ops/aws': { id: 'testing', secret: 'testing' },
  };
  const auth = {
    secretRef: {
      accessKeyIdSecretRef: { name: 'aws', key: 'id' },
      secretAccessKeySecretRef: { name: 'aws', key: 'secret' },
    },
  };
  const clients: ProviderClient[] = [];

  const connect = async (store: SecretStore | ReturnType<typeof awsClusterStore>, policy: StorePolicy) => {
    const ctx = memoryContext(secrets, store.kind === 'SecretStore' ? NAMESPACE : undefined);
    ctx.policy = policy;
    const client = await providerFor(store.spec.provider).connect(store, ctx);
    clients.push(client);
    return client;
  };

  before(async () => {
    await sharedMoto().reset();
    const sm = new SecretsManagerClient(sharedMoto().clientConfig());
    await sm.send(new CreateSecretCommand({ Name: 'policy/db', SecretString: 'from-moto' }));
    sm.destroy();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  it('a custom endpoint outside the list is refused, naming the field and the endpoint; a listed one works', async () => {
    const moto = sharedMoto().endpoint;
    const spec: AwsSecretsManagerProviderSpec = { region: sharedMoto().region, endpoint: moto, auth };
    for (const policy of [
      { allowedEndpoints: [], localStoreRoot: undefined },
      {
        allowedEndpoints: ['https://vpce-1.secretsmanager.us-east-1.vpce.amazonaws.com', '*.example.com'],
        localStoreRoot: undefined,
      },
    ]) {
      const err = await rejectionOf(connect(secretStore({ awsSecretsManager: spec }), policy));
      expect(err).to.be.instanceOf(StorePolicyError);
      expect((err as StorePolicyError).reason).to.equal('EndpointNotAllowed');
      expect((err as StorePolicyError).retry).to.equal('terminal');
      expect(err.message).to.contain(`SecretStore ${NAMESPACE}/policy`);
      expect(err.message).to.contain('spec.provider.awsSecretsManager.endpoint').and.contain(moto);
    }
    const allowed = await connect(secretStore({ awsSecretsManager: spec }), {
      allowedEndpoints: [moto],
      localStoreRoot: undefined,
    });
    expect(await allowed.getValue({ key: 'policy/db' })).to.equal('from-moto');
  });

  it('an allowed primary does not let a failover or decrypt.kms endpoint through', async () => {
    const moto = sharedMoto().endpoint;
    const policy = { allowedEndpoints: [moto], localStoreRoot: undefined };
    const cases: [AwsSecretsManagerProviderSpec, string][] = [
      [
        { region: sharedMoto().region, endpoint: moto, auth, failover: [{ endpoint: 'http://127.0.0.1:9' }] },
        'spec.provider.awsSecretsManager.failover[0].endpoint',
      ],
      [
        { region: sharedMoto().region, endpoint: moto, auth, decrypt: { kms: { endpoint: 'http://127.0.0.1:9' } } },
        'spec.provider.awsSecretsManager.decrypt.kms.endpoint',
      ],
    ];
    for (const [spec, field] of cases) {
      const err = await rejectionOf(connect(secretStore({ awsSecretsManager: spec }), policy));
      expect(err, field).to.be.instanceOf(StorePolicyError);
      expect(err.message).to.contain(field).and.contain('http://127.0.0.1:9');
    }
  });

  it('a ClusterSecretStore may name any endpoint, with no list at all', async () => {
    const store = awsClusterStore('awsSecretsManager', {
      region: sharedMoto().region,
      endpoint: sharedMoto().endpoint,
      auth: {
        secretRef: {
          accessKeyIdSecretRef: { name: 'aws', key: 'id', namespace: 'ops' },
          secretAccessKeySecretRef: { name: 'aws', key: 'secret', namespace: 'ops' },
        },
      },
    });
    const client = await connect(store, { allowedEndpoints: [], localStoreRoot: undefined });
    expect(await client.getValue({ key: 'policy/db' })).to.equal('from-moto');
  });

  describe('local stores', () => {
    let root: string;
    let outside: string;

    beforeEach(async () => {
      root = await realpath(await mkdtemp(join(tmpdir(), 'secretsync-policy-root-')));
      outside = await realpath(await mkdtemp(join(tmpdir(), 'secretsync-policy-outside-')));
      await mkdir(join(root, NAMESPACE));
      for (const dir of [join(root, NAMESPACE), outside]) {
        const store = new LocalStore(dir, masterKey);
        await store.put('db', { password: `in ${dir === outside ? 'outside' : 'root'}` });
        store.close();
      }
      await symlink(outside, join(root, NAMESPACE, 'link-out'));
    });
    afterEach(async () => {
      await rm(root, { recursive: true, force: true });
      await rm(outside, { recursive: true, force: true });
    });

    const local = (path: string) => secretStore({ local: { path, masterKeySecretRef: { name: 'master-key' } } });

    it('a directory inside the root works', async () => {
      const client = await connect(local(join(root, NAMESPACE)), { allowedEndpoints: [], localStoreRoot: root });
      expect(await client.getValue({ key: 'db', property: 'password' })).to.equal('in root');
    });

    it('outside the root, through .., through a symbolic link, or with no root: refused, and nothing is read', async () => {
      const cases: [string, string | undefined, RegExp][] = [
        [outside, root, /outside/],
        [join(root, NAMESPACE, '..', '..', outside.split('/').pop() ?? ''), root, /outside/],
        [join(root, NAMESPACE, 'link-out'), root, /symbolic link/],
        [join(root, NAMESPACE), undefined, /--local-store-root/],
      ];
      for (const [path, localStoreRoot, why] of cases) {
        const ctx = memoryContext(secrets, NAMESPACE);
        ctx.policy = { allowedEndpoints: [], localStoreRoot };
        const reads: string[] = [];
        const readSecretKey = ctx.readSecretKey.bind(ctx);
        ctx.readSecretKey = (namespace, name, key, opts) => {
          reads.push(`${namespace}/${name}`);
          return readSecretKey(namespace, name, key, opts);
        };
        const err = await rejectionOf(
          providerFor({ local: { path, masterKeySecretRef: { name: 'master-key' } } }).connect(local(path), ctx),
        );
        expect(err, path).to.be.instanceOf(StorePolicyError);
        expect((err as StorePolicyError).reason).to.equal('PathNotAllowed');
        expect(err.message).to.match(why);
        // Refused before the master key Secret was read.
        expect(reads).to.deep.equal([]);
      }
    });
  });
});
