import { expect } from 'chai';
import type { AwsKmsProviderSpec, ClusterSecretStore, SecretStore } from '../../../../src/api/types.js';
import { AwsKmsClient, KmsDecryptor, KmsEncryptor, awsKmsProvider } from '../../../../src/providers/aws-kms/index.js';
import {
  ProviderConfigError,
  ProviderError,
  type ProviderClient,
  type ProviderContext,
} from '../../../../src/providers/provider.js';
import { rejectionOf } from '../../helpers/index.js';
import { FakeKms, kmsError } from './fake-kms.js';


function context(secrets: Record<string, string> = {}): ProviderContext & { observed: string[] } {
  const observed: string[] = [];
  return {
    observed,
    storeNamespace: 'team-a',
    allowOperatorIdentityForNamespacedStores: false,
    policy: { allowedEndpoints: ['http://127.0.0.1:1'], localStoreRoot: undefined },
    observe: (operation, call) => {
      observed.push(operation);
      return call();
    },
    requestServiceAccountToken: async () => {
      throw new Error('not used');
    },
    async readSecretKey(namespace, name, key) {
      const value = secrets[`${namespace}/${name}/${key}`];
      if (value === undefined) throw new ProviderConfigError(`Secret ${namespace}/${name} has no key "${key}"`);
      return Buffer.from(value);
    },
  };
}

function store(awsKms: AwsKmsProviderSpec | undefined): SecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name: 'kms', namespace: 'team-a' },
    spec: { provider: awsKms ? { awsKms } : {} },
  };
}

const staticAuth: AwsKmsProviderSpec = {
  region: 'us-east-1',
  endpoint: 'http://127.0.0.1:1',
  auth: {
    secretRef: {
      accessKeyIdSecretRef: { name: 'aws', key: 'id' },
      secretAccessKeySecretRef: { name: 'aws', key: 'secret' },
    },
  },
};

describe('aws-kms provider', () => {
  it('is named awsKms', () => {
    expect(awsKmsProvider.name).to.equal('awsKms');
  });

  it('refuses a store without an awsKms block or region', async () => {
    expect(await rejectionOf(awsKmsProvider.connect(store(undefined), context()))).to.be.instanceOf(
      ProviderConfigError,
    );
    const err = await rejectionOf(awsKmsProvider.connect(store({ ...staticAuth, region: '' }), context()));
    expect(err).to.be.instanceOf(ProviderConfigError);
    expect(err.message).to.match(/region/);
  });

  it('connects with static credentials from Secrets, without calling AWS', async () => {
    const ctx = context({ 'team-a/aws/id': 'AKIDEXAMPLE', 'team-a/aws/secret': 'shh' });
    const client = await awsKmsProvider.connect(store(staticAuth), ctx);
    expect(client.decrypt).to.be.a('function');
    expect(ctx.observed).to.deep.equal([]);
    await client.close();
  });

  it('a namespaced store without auth may not use the operator identity', async () => {
    const cluster: ClusterSecretStore = {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'ClusterSecretStore',
      metadata: { name: 'kms' },
      spec: { provider: { awsKms: { region: 'us-east-1' } } },
    };
    expect(await rejectionOf(awsKmsProvider.connect(store({ region: 'us-east-1' }), context()))).to.be.instanceOf(
      ProviderConfigError,
    );
    const client = await awsKmsProvider.connect(cluster, { ...context(), storeNamespace: undefined });
    await client.close();
  });

  describe('client', () => {
    let kms: FakeKms;
    let observed: string[];
    let client: ProviderClient;

    beforeEach(() => {
      kms = new FakeKms();
      observed = [];
      const observe: ProviderContext['observe'] = (operation, call) => {
        observed.push(operation);
        return call();
      };
      client = new AwsKmsClient(kms, new KmsDecryptor(kms, observe), observe);
    });

    it('only decrypts: get, extract and find say so', async () => {
      for (const call of [
        () => client.getValue({ key: 'x' }),
        () => client.getProperties('x'),
        () => client.find({ prefix: 'x' }),
      ]) {
        const err = await rejectionOf(call());
        expect(err).to.be.instanceOf(ProviderConfigError);
        expect(err.message).to.match(/only decrypts inline ciphertexts/);
      }
    });

    it('decrypts inline ciphertexts', async () => {
      const key = kms.createKey();
      const binding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };
      const ciphertext = await new KmsEncryptor(kms).encrypt('v', { keyId: key, scope: 'strict', binding });
      expect(await client.decrypt?.(ciphertext, binding)).to.equal('v');
      expect(observed).to.deep.equal(['Decrypt']);
    });

    it('checks with one ListKeys call and maps failures', async () => {
      await client.check();
      expect(observed).to.deep.equal(['ListKeys']);
      // Authenticated but not allowed to list keys: a least-privilege identity, healthy.
      kms.failures.push(kmsError('AccessDeniedException'));
      await client.check();
      kms.failures.push(
        kmsError('UnrecognizedClientException', 'The security token included in the request is invalid'),
      );
      expect(await rejectionOf(client.check())).to.be.instanceOf(ProviderConfigError);
      kms.failures.push(kmsError('TimeoutError', 'socket hang up'));
      const err = await rejectionOf(client.check());
      expect(err).to.be.instanceOf(ProviderError);
      expect(err.message).to.equal('KMS ListKeys: TimeoutError: socket hang up');
    });

    it('close() releases the SDK client', async () => {
      await client.close();
      expect(kms.closed).to.equal(true);
    });
  });
});
