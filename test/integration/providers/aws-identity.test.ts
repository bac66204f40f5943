// Whose AWS identity a store uses, end to end: credentials from Secrets in the
// real test cluster, AssumeRole, ServiceAccount tokens minted with the real
// TokenRequest API and exchanged with AssumeRoleWithWebIdentity (moto's STS),
// and the rules that keep a SecretStore to its own namespace.
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { expect } from 'chai';
import type { AwsCommonSpec, AwsSecretsManagerProviderSpec } from '../../../src/api/types.js';
import { awsClientConfig } from '../../../src/providers/aws/client-config.js';
import { awsSecretsManagerProvider } from '../../../src/providers/aws-secrets-manager/index.js';
import { ProviderConfigError } from '../../../src/providers/provider.js';
import { rejectionOf } from '../../unit/helpers/index.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import { awsClusterStore, awsSecretStore, clusterContext, motoSpec } from './aws-context.js';

const ROLE = 'arn:aws:iam::123456789012:role/secretsync-test';

/** Who AWS (moto) thinks the credentials of a client config belong to. */
async function callerArn(config: AwsCommonSpec & { credentials: STSClient['config']['credentials'] }): Promise<string> {
  const sts = new STSClient({ region: config.region, endpoint: config.endpoint, credentials: config.credentials });
  try {
    return (await sts.send(new GetCallerIdentityCommand({}))).Arn ?? '';
  } finally {
    sts.destroy();
  }
}

function jwtClaims(token: string): { sub?: string; aud?: string[] } {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: string; aud?: string[] };
}

describe('AWS identities of stores (real cluster, moto STS)', () => {
  let namespace: string;
  let other: string;

  before(async () => {
    const cluster = sharedCluster();
    namespace = uniqueName('aws-id');
    other = uniqueName('aws-id-other');
    for (const ns of [namespace, other]) {
      const res = await cluster.adminRequest('POST', '/api/v1/namespaces', { metadata: { name: ns } });
      expect(res.status, res.body).to.equal(201);
    }
    const secret = await cluster.adminRequest('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      metadata: { name: 'aws-keys' },
      stringData: { 'access-key-id': 'AKIAIOSFODNN7EXAMPLE', 'secret-access-key': 'moto-accepts-anything\n' },
    });
    expect(secret.status, secret.body).to.equal(201);
    for (const [ns, name] of [
      [namespace, 'app'],
      [other, 'admin'],
    ] as const) {
      const sa = await cluster.adminRequest('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name } });
      expect(sa.status, sa.body).to.equal(201);
    }
  });

  beforeEach(async () => {
    await sharedMoto().reset();
  });

  const keysAuth: AwsCommonSpec['auth'] = {
    secretRef: {
      accessKeyIdSecretRef: { name: 'aws-keys', key: 'access-key-id' },
      secretAccessKeySecretRef: { name: 'aws-keys', key: 'secret-access-key' },
    },
  };

  it('static credentials from a Kubernetes Secret in the store’s namespace', async () => {
    const ctx = clusterContext(sharedCluster().kubeConfig(), namespace);
    const spec = motoSpec<AwsSecretsManagerProviderSpec>({ auth: keysAuth });
    const store = awsSecretStore('awsSecretsManager', spec, namespace);
    const config = await awsClientConfig(spec, store, ctx);
    expect(await config.credentials()).to.deep.equal({
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: 'moto-accepts-anything',
    });
    const client = await awsSecretsManagerProvider.connect(store, ctx);
    try {
      await client.check();
    } finally {
      await client.close();
      ctx.client.close();
    }
  });

  it('a ClusterSecretStore reads the Secret from the namespace its selectors name', async () => {
    const ctx = clusterContext(sharedCluster().kubeConfig(), undefined);
    const spec = motoSpec<AwsSecretsManagerProviderSpec>({
      auth: {
        secretRef: {
          accessKeyIdSecretRef: { name: 'aws-keys', key: 'access-key-id', namespace },
          secretAccessKeySecretRef: { name: 'aws-keys', key: 'secret-access-key', namespace },
        },
      },
    });
    const config = await awsClientConfig(spec, awsClusterStore('awsSecretsManager', spec), ctx);
    expect((await config.credentials()).accessKeyId).to.equal('AKIAIOSFODNN7EXAMPLE');
    ctx.client.close();
  });

  it('a SecretStore cannot read credentials from another namespace', async () => {
    const ctx = clusterContext(sharedCluster().kubeConfig(), other);
    const spec = motoSpec<AwsSecretsManagerProviderSpec>({
      auth: {
        secretRef: {
          accessKeyIdSecretRef: { name: 'aws-keys', key: 'access-key-id', namespace },
          secretAccessKeySecretRef: { name: 'aws-keys', key: 'secret-access-key', namespace },
        },
      },
    });
    const err = await rejectionOf(awsClientConfig(spec, awsSecretStore('awsSecretsManager', spec, other), ctx));
    expect(err).to.be.instanceOf(ProviderConfigError);
    expect(err.message).to.contain(`may only read Secrets of its own namespace "${other}"`);
    ctx.client.close();
  });

  it('roleArn: AssumeRole with the Secret’s keys, cached until shortly before expiry', async () => {
    const ctx = clusterContext(sharedCluster().kubeConfig(), namespace);
    const spec = motoSpec<AwsSecretsManagerProviderSpec>({ auth: keysAuth, roleArn: ROLE });
    const store = awsSecretStore('awsSecretsManager', spec, namespace, 'assumer');
    const config = await awsClientConfig(spec, store, ctx);
    const creds = await config.credentials();
    expect(creds.accessKeyId).to.not.equal('AKIAIOSFODNN7EXAMPLE');
    expect(creds.sessionToken).to.be.a('string');
    expect(creds.expiration?.getTime()).to.be.greaterThan(Date.now() + 30 * 60_000);
    expect(await callerArn({ ...spec, credentials: config.credentials })).to.equal(
      `arn:aws:sts::123456789012:assumed-role/secretsync-test/secretsync-${namespace}-assumer`,
    );

    const client = await awsSecretsManagerProvider.connect(store, ctx);
    try {
      await client.check();
    } finally {
      await client.close();
      ctx.client.close();
    }
    await config.credentials();
    expect(ctx.count('AssumeRole')).to.equal(2); // one per client config, reused within each
  });

  it('serviceAccountRef: a real ServiceAccount token exchanged with AssumeRoleWithWebIdentity', async () => {
    const ctx = clusterContext(sharedCluster().kubeConfig(), namespace);
    const spec = motoSpec<AwsSecretsManagerProviderSpec>({
      auth: { serviceAccountRef: { name: 'app' } },
      roleArn: ROLE,
    });
    const store = awsSecretStore('awsSecretsManager', spec, namespace, 'irsa');
    const client = await awsSecretsManagerProvider.connect(store, ctx);
    try {
      expect(ctx.tokens).to.have.length(0); // nothing minted before it is needed
      await client.check();
      await client.find({ prefix: 'nothing/' });
    } finally {
      await client.close();
    }
    expect(ctx.count('AssumeRoleWithWebIdentity')).to.equal(1);
    expect(ctx.tokens).to.have.length(1);
    const claims = jwtClaims(ctx.tokens[0] ?? '');
    expect(claims.sub).to.equal(`system:serviceaccount:${namespace}:app`);
    expect(claims.aud).to.deep.equal(['sts.amazonaws.com']);

    const config = await awsClientConfig(spec, store, ctx);
    expect(await callerArn({ ...spec, credentials: config.credentials })).to.equal(
      `arn:aws:sts::123456789012:assumed-role/secretsync-test/secretsync-${namespace}-irsa`,
    );
    ctx.client.close();
  });

  it('serviceAccountRef: a missing ServiceAccount is a configuration error at the first request', async () => {
    const ctx = clusterContext(sharedCluster().kubeConfig(), namespace);
    const spec = motoSpec<AwsSecretsManagerProviderSpec>({
      auth: { serviceAccountRef: { name: 'ghost' } },
      roleArn: ROLE,
    });
    const client = await awsSecretsManagerProvider.connect(awsSecretStore('awsSecretsManager', spec, namespace), ctx);
    try {
      const err = await rejectionOf(client.check());
      expect(err).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.equal(`ServiceAccount ${namespace}/ghost not found`);
    } finally {
      await client.close();
      ctx.client.close();
    }
  });

  it('a SecretStore naming another namespace’s ServiceAccount is refused before any token is minted', async () => {
    const ctx = clusterContext(sharedCluster().kubeConfig(), namespace);
    const spec = motoSpec<AwsSecretsManagerProviderSpec>({
      auth: { serviceAccountRef: { name: 'admin', namespace: other } },
      roleArn: ROLE,
    });
    const err = await rejectionOf(
      awsSecretsManagerProvider.connect(awsSecretStore('awsSecretsManager', spec, namespace, 'sneaky'), ctx),
    );
    expect(err).to.be.instanceOf(ProviderConfigError);
    expect(err.message).to.equal(
      `SecretStore ${namespace}/sneaky may only use ServiceAccounts of its own namespace "${namespace}", not ${other}/admin`,
    );
    expect(ctx.tokens).to.have.length(0);
    ctx.client.close();
  });

  describe('no auth: the operator’s own identity', () => {
    const saved: Record<string, string | undefined> = {};
    const env = { AWS_ACCESS_KEY_ID: 'operator-key', AWS_SECRET_ACCESS_KEY: 'operator-secret' };

    before(() => {
      for (const [k, v] of Object.entries(env)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
    });

    after(() => {
      for (const k of Object.keys(env)) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    });

    it('is refused to a SecretStore while the flag is off', async () => {
      const ctx = clusterContext(sharedCluster().kubeConfig(), namespace, false);
      const spec = motoSpec<AwsSecretsManagerProviderSpec>();
      const err = await rejectionOf(
        awsSecretsManagerProvider.connect(awsSecretStore('awsSecretsManager', spec, namespace, 'bare'), ctx),
      );
      expect(err).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.equal(
        `SecretStore ${namespace}/bare has no auth and may not use the operator's identity ` +
          '(the cluster admin can allow it with --allow-operator-identity-for-namespaced-stores)',
      );
      ctx.client.close();
    });

    it('is allowed to a SecretStore when the flag is on, and to a ClusterSecretStore always', async () => {
      for (const [ctx, store] of [
        [
          clusterContext(sharedCluster().kubeConfig(), namespace, true),
          awsSecretStore('awsSecretsManager', motoSpec(), namespace, 'bare'),
        ],
        [
          clusterContext(sharedCluster().kubeConfig(), undefined, false),
          awsClusterStore('awsSecretsManager', motoSpec()),
        ],
      ] as const) {
        const config = await awsClientConfig(motoSpec(), store, ctx);
        expect((await config.credentials()).accessKeyId).to.equal('operator-key');
        const client = await awsSecretsManagerProvider.connect(store, ctx);
        try {
          await client.check();
        } finally {
          await client.close();
          ctx.client.close();
        }
      }
    });

    it('then assumes roleArn when one is set', async () => {
      const ctx = clusterContext(sharedCluster().kubeConfig(), undefined);
      const spec = motoSpec<AwsSecretsManagerProviderSpec>({ roleArn: ROLE });
      const config = await awsClientConfig(spec, awsClusterStore('awsSecretsManager', spec, 'operator-role'), ctx);
      expect(await callerArn({ ...spec, credentials: config.credentials })).to.equal(
        'arn:aws:sts::123456789012:assumed-role/secretsync-test/secretsync-operator-role',
      );
      ctx.client.close();
    });
  });
});
