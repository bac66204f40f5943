import { expect } from 'chai';
import type { AwsCommonSpec, ClusterSecretStore, SecretStore } from '../../../../src/api/types.js';
import {
  awsClientConfig,
  awsRegionalConfigs,
  planIdentity,
  roleSessionName,
} from '../../../../src/providers/aws/client-config.js';
import { kmsSpec } from '../../../../src/providers/aws/decrypt.js';
import { memoizeCredentials } from '../../../../src/providers/aws/credentials.js';
import { ProviderConfigError, type ProviderContext } from '../../../../src/providers/provider.js';
import { rejectionOf } from '../../helpers/index.js';

/** A context over in-memory Secrets ("ns/name" → key → value) that records what was read and minted. */
function fakeContext(
  storeNamespace: string | undefined,
  secrets: Record<string, Record<string, string>> = {},
  allowOperatorIdentityForNamespacedStores = false,
): ProviderContext & { reads: string[]; tokens: string[] } {
  const reads: string[] = [];
  const tokens: string[] = [];
  return {
    reads,
    tokens,
    storeNamespace,
    allowOperatorIdentityForNamespacedStores,
    policy: { allowedEndpoints: [], localStoreRoot: undefined },
    observe: (_operation, call) => call(),
    async requestServiceAccountToken(namespace, name, audiences, seconds) {
      tokens.push(`${namespace}/${name} ${audiences.join(',')} ${seconds}`);
      return 'token';
    },
    async readSecretKey(namespace, name, key) {
      reads.push(`${namespace}/${name}/${key}`);
      const value = secrets[`${namespace}/${name}`]?.[key];
      if (value === undefined) throw new ProviderConfigError(`Secret ${namespace}/${name} has no key "${key}"`);
      return Buffer.from(value);
    },
  };
}

function secretStore(spec: AwsCommonSpec, namespace = 'team-a'): SecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name: 'sm', namespace },
    spec: { provider: { awsSecretsManager: spec } },
  };
}

function clusterStore(spec: AwsCommonSpec): ClusterSecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'ClusterSecretStore',
    metadata: { name: 'shared' },
    spec: { provider: { awsSecretsManager: spec } },
  };
}

const keysAuth = (namespace?: string): AwsCommonSpec['auth'] => ({
  secretRef: {
    accessKeyIdSecretRef: { name: 'aws', key: 'id', ...(namespace ? { namespace } : {}) },
    secretAccessKeySecretRef: { name: 'aws', key: 'secret', ...(namespace ? { namespace } : {}) },
  },
});

describe('aws client config: whose credentials a store uses', () => {
  describe('auth.secretRef', () => {
    it('reads static keys from the SecretStore’s own namespace (trimmed)', async () => {
      const ctx = fakeContext('team-a', { 'team-a/aws': { id: 'AKIAEXAMPLE\n', secret: ' s3cr3t ' } });
      const config = await awsClientConfig(
        { region: 'eu-west-1', endpoint: 'http://127.0.0.1:5000', auth: keysAuth() },
        secretStore({ region: 'eu-west-1' }),
        ctx,
      );
      expect(config).to.deep.include({
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:5000',
        retryMode: 'adaptive',
        maxAttempts: 3,
      });
      expect(await config.credentials()).to.deep.equal({ accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 's3cr3t' });
      expect(ctx.reads).to.have.members(['team-a/aws/id', 'team-a/aws/secret']);
    });

    it('adds a session token when one is referenced', async () => {
      const ctx = fakeContext('team-a', { 'team-a/aws': { id: 'a', secret: 'b', token: 'c' } });
      const auth = keysAuth();
      if (auth?.secretRef) auth.secretRef.sessionTokenSecretRef = { name: 'aws', key: 'token' };
      const config = await awsClientConfig({ region: 'us-east-1', auth }, secretStore({ region: 'us-east-1' }), ctx);
      expect(await config.credentials()).to.deep.equal({ accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 'c' });
      expect(config).to.not.have.property('endpoint');
    });

    it('a SecretStore may not read another namespace', () => {
      const err = (() => {
        try {
          planIdentity(
            { region: 'us-east-1', auth: keysAuth('kube-system') },
            secretStore({ region: 'us-east-1' }),
            fakeContext('team-a'),
          );
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(err).to.be.instanceOf(ProviderConfigError);
      expect(err?.message).to.contain('SecretStore team-a/sm may only read Secrets of its own namespace "team-a"');
      expect(err?.message).to.contain('kube-system/aws');
    });

    it('a SecretStore naming its own namespace is fine', () => {
      const plan = planIdentity(
        { region: 'us-east-1', auth: keysAuth('team-a') },
        secretStore({ region: 'us-east-1' }),
        fakeContext('team-a'),
      );
      expect(plan).to.deep.include({ kind: 'static', namespace: 'team-a' });
    });

    it('a ClusterSecretStore reads the selector’s namespace, which is required', async () => {
      const ctx = fakeContext(undefined, { 'creds/aws': { id: 'a', secret: 'b' } });
      const config = await awsClientConfig(
        { region: 'us-east-1', auth: keysAuth('creds') },
        clusterStore({ region: 'us-east-1' }),
        ctx,
      );
      expect((await config.credentials()).accessKeyId).to.equal('a');
      const err = await rejectionOf(
        awsClientConfig({ region: 'us-east-1', auth: keysAuth() }, clusterStore({ region: 'us-east-1' }), ctx),
      );
      expect(err).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.contain(
        'auth.secretRef.accessKeyIdSecretRef.namespace is required on a ClusterSecretStore',
      );
    });

    it('a missing Secret key is a configuration error from the context', async () => {
      const err = await rejectionOf(
        awsClientConfig(
          { region: 'us-east-1', auth: keysAuth() },
          secretStore({ region: 'us-east-1' }),
          fakeContext('team-a'),
        ),
      );
      expect(err).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.contain('Secret team-a/aws has no key');
    });

    it('an empty key value is refused without echoing anything', async () => {
      const ctx = fakeContext('team-a', { 'team-a/aws': { id: '  \n', secret: 'b' } });
      const err = await rejectionOf(
        awsClientConfig({ region: 'us-east-1', auth: keysAuth() }, secretStore({ region: 'us-east-1' }), ctx),
      );
      expect(err).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.equal('key "id" of Secret team-a/aws (access key id) is empty');
    });
  });

  describe('auth.serviceAccountRef', () => {
    const roleArn = 'arn:aws:iam::123456789012:role/app';

    it('uses the SecretStore’s namespace and the default audience', () => {
      const plan = planIdentity(
        { region: 'us-east-1', roleArn, auth: { serviceAccountRef: { name: 'app' } } },
        secretStore({ region: 'us-east-1' }),
        fakeContext('team-a'),
      );
      expect(plan).to.deep.equal({
        kind: 'webIdentity',
        namespace: 'team-a',
        serviceAccount: 'app',
        audiences: ['sts.amazonaws.com'],
        roleArn,
      });
    });

    it('a SecretStore may not name another namespace’s ServiceAccount', () => {
      expect(() =>
        planIdentity(
          { region: 'us-east-1', roleArn, auth: { serviceAccountRef: { name: 'admin', namespace: 'kube-system' } } },
          secretStore({ region: 'us-east-1' }),
          fakeContext('team-a'),
        ),
      ).to.throw(
        ProviderConfigError,
        'SecretStore team-a/sm may only use ServiceAccounts of its own namespace "team-a", not kube-system/admin',
      );
    });

    it('needs roleArn', () => {
      expect(() =>
        planIdentity(
          { region: 'us-east-1', auth: { serviceAccountRef: { name: 'app' } } },
          secretStore({ region: 'us-east-1' }),
          fakeContext('team-a'),
        ),
      ).to.throw(ProviderConfigError, 'serviceAccountRef needs roleArn');
    });

    it('a ClusterSecretStore must name the namespace, and keeps custom audiences', () => {
      expect(() =>
        planIdentity(
          { region: 'us-east-1', roleArn, auth: { serviceAccountRef: { name: 'app' } } },
          clusterStore({ region: 'us-east-1' }),
          fakeContext(undefined),
        ),
      ).to.throw(ProviderConfigError, 'auth.serviceAccountRef.namespace is required on a ClusterSecretStore');
      const plan = planIdentity(
        {
          region: 'us-east-1',
          roleArn,
          auth: { serviceAccountRef: { name: 'app', namespace: 'apps', audiences: ['my-aud'] } },
        },
        clusterStore({ region: 'us-east-1' }),
        fakeContext(undefined),
      );
      expect(plan).to.deep.include({ namespace: 'apps', audiences: ['my-aud'] });
    });

    it('mints no token until credentials are first needed', async () => {
      const ctx = fakeContext('team-a');
      await awsClientConfig(
        { region: 'us-east-1', roleArn, auth: { serviceAccountRef: { name: 'app' } } },
        secretStore({ region: 'us-east-1' }),
        ctx,
      );
      expect(ctx.tokens).to.deep.equal([]);
    });
  });

  describe('no auth: the operator’s identity', () => {
    it('is refused to a SecretStore unless the cluster admin allows it', () => {
      expect(() =>
        planIdentity({ region: 'us-east-1' }, secretStore({ region: 'us-east-1' }), fakeContext('team-a')),
      ).to.throw(
        ProviderConfigError,
        "SecretStore team-a/sm has no auth and may not use the operator's identity (the cluster admin can allow it with --allow-operator-identity-for-namespaced-stores)",
      );
      expect(
        planIdentity({ region: 'us-east-1' }, secretStore({ region: 'us-east-1' }), fakeContext('team-a', {}, true)),
      ).to.deep.equal({ kind: 'operator' });
    });

    it('is always allowed to a ClusterSecretStore', async () => {
      expect(
        planIdentity({ region: 'us-east-1' }, clusterStore({ region: 'us-east-1' }), fakeContext(undefined)),
      ).to.deep.equal({
        kind: 'operator',
      });
      const config = await awsClientConfig(
        { region: 'us-east-1' },
        clusterStore({ region: 'us-east-1' }),
        fakeContext(undefined),
      );
      expect(config.credentials).to.be.a('function');
    });
  });

  it('refuses both auth kinds at once, bad regions and bad endpoints', async () => {
    const ctx = fakeContext('team-a');
    const both: AwsCommonSpec = {
      region: 'us-east-1',
      roleArn: 'arn:aws:iam::123456789012:role/app',
      auth: { ...keysAuth(), serviceAccountRef: { name: 'app' } },
    };
    expect(() => planIdentity(both, secretStore(both), ctx)).to.throw(ProviderConfigError, 'choose one');
    for (const spec of [
      { region: '' },
      { region: 'US East' },
      { region: 'us-east-1', endpoint: 'ftp://x' },
      { region: 'us-east-1', endpoint: 'not a url' },
    ]) {
      const err = await rejectionOf(awsClientConfig({ ...spec, auth: keysAuth() }, secretStore(spec), ctx));
      expect(err).to.be.instanceOf(ProviderConfigError);
    }
  });

  it('names STS sessions after the store, within STS limits', () => {
    expect(roleSessionName(secretStore({ region: 'x' }))).to.equal('secretsync-team-a-sm');
    expect(roleSessionName(clusterStore({ region: 'x' }))).to.equal('secretsync-shared');
    const long = clusterStore({ region: 'x' });
    long.metadata.name = 'a'.repeat(100);
    expect(roleSessionName(long)).to.have.length(64);
  });
});

describe('aws client config: failover regions', () => {
  const creds = { 'team-a/aws': { id: 'AKIA', secret: 'shh' } };
  const auth = {
    secretRef: {
      accessKeyIdSecretRef: { name: 'aws', key: 'id' },
      secretAccessKeySecretRef: { name: 'aws', key: 'secret' },
    },
  };

  it('without failover: one region, with the default timeouts all the same (a hanging endpoint must fail in time)', async () => {
    const configs = await awsRegionalConfigs(
      { region: 'eu-west-1', auth },
      secretStore({ region: 'eu-west-1' }),
      fakeContext('team-a', creds),
    );
    expect(configs.map((c) => c.target)).to.deep.equal([{ region: 'eu-west-1' }]);
    expect(configs[0]?.config.requestHandler).to.deep.equal({
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      throwOnRequestTimeout: true,
      socketTimeout: 10_000,
    });
    expect(configs[0]?.config.maxAttempts).to.equal(3);
  });

  it('takes the timeouts the operator was started with (ProviderContext.timeouts)', async () => {
    const config = await awsClientConfig({ region: 'eu-west-1', auth }, secretStore({ region: 'eu-west-1' }), {
      ...fakeContext('team-a', creds),
      timeouts: { connectMs: 250, requestMs: 1500 },
    });
    expect(config.requestHandler).to.deep.equal({
      connectionTimeout: 250,
      requestTimeout: 1500,
      throwOnRequestTimeout: true,
      socketTimeout: 1500,
    });
  });

  it('the primary first, then each failover region with its own endpoint and credentials, and connection timeouts', async () => {
    const spec: AwsCommonSpec = {
      region: 'eu-west-1',
      endpoint: 'http://primary:5000',
      auth,
      failover: [{ region: 'eu-central-1', endpoint: 'http://second:5000' }, { region: 'us-east-1' }],
    };
    const ctx = fakeContext('team-a', creds);
    const configs = await awsRegionalConfigs(spec, secretStore(spec), ctx);
    expect(configs.map((c) => [c.config.region, c.config.endpoint])).to.deep.equal([
      ['eu-west-1', 'http://primary:5000'],
      ['eu-central-1', 'http://second:5000'],
      // No endpoint of its own: the region's AWS endpoint, not the primary's.
      ['us-east-1', undefined],
    ]);
    for (const c of configs) expect(c.config.requestHandler.connectionTimeout).to.equal(3000);
    expect(await configs[2]?.config.credentials()).to.include({ accessKeyId: 'AKIA' });
  });

  it('another endpoint of the same region is a target of its own; an entry without region is in the primary region', async () => {
    const spec: AwsCommonSpec = {
      region: 'eu-west-1',
      endpoint: 'https://vpce-0a1b.secretsmanager.eu-west-1.vpce.amazonaws.com',
      auth,
      // The public endpoint behind the VPC endpoint, then a second endpoint given without region.
      failover: [{ region: 'eu-west-1' }, { endpoint: 'http://replica:5000' }],
    };
    const configs = await awsRegionalConfigs(spec, secretStore(spec), fakeContext('team-a', creds));
    expect(configs.map((c) => c.target)).to.deep.equal([
      { region: 'eu-west-1', endpoint: 'https://vpce-0a1b.secretsmanager.eu-west-1.vpce.amazonaws.com' },
      { region: 'eu-west-1' },
      { region: 'eu-west-1', endpoint: 'http://replica:5000' },
    ]);
    expect(configs.map((c) => [c.config.region, c.config.endpoint])).to.deep.equal([
      ['eu-west-1', 'https://vpce-0a1b.secretsmanager.eu-west-1.vpce.amazonaws.com'],
      ['eu-west-1', undefined],
      ['eu-west-1', 'http://replica:5000'],
    ]);
  });

  it('refuses an entry that repeats the primary or another entry (region and endpoint), an empty entry, a bad region or endpoint, and too many entries', async () => {
    const ctx = fakeContext('team-a', creds);
    for (const [endpoint, failover, message] of [
      [
        undefined,
        [{ region: 'eu-west-1' }],
        "failover[0]: region eu-west-1 at the region's AWS endpoint repeats the primary",
      ],
      [
        undefined,
        [{ region: 'eu-central-1' }, { region: 'eu-central-1' }],
        "failover[1]: region eu-central-1 at the region's AWS endpoint repeats failover[0]",
      ],
      // Without region the entry is in the primary's region: the same pair as the primary.
      ['http://a:1', [{ endpoint: 'http://a:1' }], 'failover[0]: region eu-west-1 at http://a:1 repeats the primary'],
      [undefined, [{ endpoint: 'http://b:1' }, { region: 'eu-west-1', endpoint: 'http://b:1' }], 'repeats failover[0]'],
      [undefined, [{}], 'failover[0]: needs a region, an endpoint, or both'],
      [undefined, [{ region: 'Not A Region' }], 'region must be an AWS region'],
      [undefined, [{ region: 'eu-central-1', endpoint: 'ftp://x' }], 'endpoint must be an http(s) URL'],
      [undefined, ['a', 'b', 'c', 'd', 'e'].map((r) => ({ region: `eu-${r}-1` })), 'at most 4'],
    ] as const) {
      const spec: AwsCommonSpec = {
        region: 'eu-west-1',
        ...(endpoint !== undefined ? { endpoint } : {}),
        auth,
        failover: [...failover],
      };
      const err = await rejectionOf(awsRegionalConfigs(spec, secretStore(spec), ctx));
      expect(err, JSON.stringify(failover)).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.contain(message);
    }
  });

  it('decrypt.kms inherits failover only when it names no region or endpoint of its own; circuitBreaker always', () => {
    const block: AwsCommonSpec = {
      region: 'eu-west-1',
      failover: [{ region: 'eu-central-1' }],
      circuitBreaker: { openSeconds: 5 },
    };
    expect(kmsSpec(block, { kms: {} })).to.include({ failover: block.failover, circuitBreaker: block.circuitBreaker });
    const elsewhere = kmsSpec(block, { kms: { region: 'us-east-1' } });
    expect(elsewhere.failover).to.equal(undefined);
    expect(elsewhere.circuitBreaker).to.equal(block.circuitBreaker);
    const own = [{ region: 'us-west-2' }];
    expect(kmsSpec(block, { kms: { region: 'us-east-1', failover: own } }).failover).to.equal(own);
  });
});

describe('aws credential memoization', () => {
  const minutes = (n: number) => n * 60_000;

  it('keeps expiring credentials until 5 minutes before they expire', async () => {
    let now = 0;
    let fetches = 0;
    const provider = memoizeCredentials(
      async () => {
        fetches++;
        return { accessKeyId: `k${fetches}`, secretAccessKey: 's', expiration: new Date(now + minutes(60)) };
      },
      { now: () => now },
    );
    expect((await provider()).accessKeyId).to.equal('k1');
    now = minutes(54);
    expect((await provider()).accessKeyId).to.equal('k1');
    now = minutes(55);
    expect((await provider()).accessKeyId).to.equal('k2');
    expect(fetches).to.equal(2);
  });

  it('refreshes short-lived credentials at half their lifetime', async () => {
    let now = 0;
    let fetches = 0;
    const provider = memoizeCredentials(
      async () => {
        fetches++;
        return { accessKeyId: 'k', secretAccessKey: 's', expiration: new Date(now + minutes(4)) };
      },
      { now: () => now },
    );
    await provider();
    now = minutes(1);
    await provider();
    expect(fetches).to.equal(1);
    now = minutes(2);
    await provider();
    expect(fetches).to.equal(2);
  });

  it('shares one fetch between concurrent callers and keeps credentials without expiry', async () => {
    let fetches = 0;
    const provider = memoizeCredentials(async () => {
      fetches++;
      await new Promise((r) => setTimeout(r, 5));
      return { accessKeyId: 'k', secretAccessKey: 's' };
    });
    await Promise.all([provider(), provider(), provider()]);
    await provider();
    expect(fetches).to.equal(1);
  });

  it('serves still-valid credentials when a refresh fails, and fails once they expire', async () => {
    let now = 0;
    let fail = false;
    const provider = memoizeCredentials(
      async () => {
        if (fail) throw new Error('STS unreachable');
        return { accessKeyId: 'k', secretAccessKey: 's', expiration: new Date(now + minutes(60)) };
      },
      { now: () => now },
    );
    await provider();
    fail = true;
    now = minutes(57);
    expect((await provider()).accessKeyId).to.equal('k');
    now = minutes(61);
    expect((await rejectionOf(provider())).message).to.equal('STS unreachable');
    fail = false;
    expect((await provider()).accessKeyId).to.equal('k');
  });
});
