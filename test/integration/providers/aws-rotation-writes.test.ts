// Rotation writes (putValue) against moto: Secrets Manager keeps AWSPREVIOUS and
// dedupes on the request token; Parameter Store makes a new version per write
// and recognises a retried one.
import {
  DescribeSecretCommand,
  ListSecretVersionIdsCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetParameterHistoryCommand, SSMClient } from '@aws-sdk/client-ssm';
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { awsParameterStoreProvider } from '../../../src/providers/aws-parameter-store/index.js';
import { awsSecretsManagerProvider } from '../../../src/providers/aws-secrets-manager/index.js';
import type { ProviderClient } from '../../../src/providers/provider.js';
import { sharedMoto } from '../env.js';
import { awsClusterStore, memoryContext, motoKeys, motoSpec } from './aws-context.js';

describe('rotation writes to AWS stores (moto)', () => {
  let client: ProviderClient;
  afterEach(async () => client?.close());
  beforeEach(async () => sharedMoto().reset());

  it('Secrets Manager: a new version becomes AWSCURRENT, the old one AWSPREVIOUS; a retry with the same token writes nothing', async () => {
    const ctx = memoryContext(motoKeys.secrets, undefined);
    client = await awsSecretsManagerProvider.connect(
      awsClusterStore('awsSecretsManager', motoSpec({ auth: motoKeys.auth }), 'sm-rot'),
      ctx,
    );
    const sm = new SecretsManagerClient(sharedMoto().clientConfig());
    try {
      const put = client.putValue?.bind(client);
      if (!put) throw new Error('putValue missing');
      const t1 = randomUUID();
      // A missing secret is created.
      expect((await put({ key: 'rot/db', property: 'password' }, 'one', { requestToken: t1 })).version).to.equal(t1);
      const t2 = randomUUID();
      expect((await put({ key: 'rot/db', property: 'password' }, 'two', { requestToken: t2 })).version).to.equal(t2);
      // The retry generated another value, but the token says the rotation already happened.
      expect((await put({ key: 'rot/db', property: 'password' }, 'two-retry', { requestToken: t2 })).version).to.equal(
        t2,
      );
      const versions = await sm.send(new ListSecretVersionIdsCommand({ SecretId: 'rot/db', IncludeDeprecated: true }));
      expect(versions.Versions?.map((v) => v.VersionId).sort()).to.deep.equal([t1, t2].sort());
      const stages = (await sm.send(new DescribeSecretCommand({ SecretId: 'rot/db' }))).VersionIdsToStages ?? {};
      expect(stages[t2]).to.include('AWSCURRENT');
      expect(stages[t1]).to.include('AWSPREVIOUS');
      expect(await client.getValue({ key: 'rot/db', property: 'password' })).to.equal('two');
      expect(await client.getValue({ key: 'rot/db', property: 'password', version: 'AWSPREVIOUS' })).to.equal('one');
      // Key pairs are laid over the JSON; other properties stay.
      await put({ key: 'rot/db' }, { privateKey: 'p', publicKey: 'q' }, { requestToken: randomUUID() });
      expect(await client.getProperties('rot/db')).to.deep.equal({ password: 'two', privateKey: 'p', publicKey: 'q' });
    } finally {
      sm.destroy();
    }
  });

  it('Parameter Store: each write is a new version (SecureString), and a retry with the same token is recognised', async () => {
    const ctx = memoryContext(motoKeys.secrets, undefined);
    client = await awsParameterStoreProvider.connect(
      awsClusterStore('awsParameterStore', motoSpec({ auth: motoKeys.auth }), 'ps-rot'),
      ctx,
    );
    const ssm = new SSMClient(sharedMoto().clientConfig());
    try {
      const put = client.putValue?.bind(client);
      if (!put) throw new Error('putValue missing');
      expect((await put({ key: '/rot/token' }, 'one', { requestToken: randomUUID() })).version).to.equal('1');
      const t = randomUUID();
      expect((await put({ key: '/rot/token' }, 'two', { requestToken: t })).version).to.equal('2');
      expect((await put({ key: '/rot/token' }, 'two-retry', { requestToken: t })).version).to.equal('2');
      const history = await ssm.send(new GetParameterHistoryCommand({ Name: '/rot/token' }));
      expect(history.Parameters?.map((p) => [p.Version, p.Type])).to.deep.equal([
        [1, 'SecureString'],
        [2, 'SecureString'],
      ]);
      expect(await client.getValue({ key: '/rot/token' })).to.equal('two');
      expect(await client.getValue({ key: '/rot/token', version: '1' })).to.equal('one');
    } finally {
      ssm.destroy();
    }
  });
});
