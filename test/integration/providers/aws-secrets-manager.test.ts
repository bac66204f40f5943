// The awsSecretsManager provider against moto through the real SDK clients.
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { expect } from 'chai';
import type { AwsSecretsManagerProviderSpec, FindSpec, RemoteRef } from '../../../src/api/types.js';
import { storeBudgets } from '../../../src/providers/budget.js';
import { KmsEncryptor } from '../../../src/providers/aws-kms/index.js';
import { awsSecretsManagerProvider } from '../../../src/providers/aws-secrets-manager/index.js';
import { LimitError } from '../../../src/api/errors.js';
import { KeyNotFoundError, ProviderConfigError, refKey, type ProviderClient } from '../../../src/providers/provider.js';
import { rejectionOf } from '../../unit/helpers/index.js';
import { sharedMoto } from '../env.js';
import { awsClusterStore, memoryContext, motoKeys, motoSpec, type CountingContext } from './aws-context.js';

describe('awsSecretsManager provider (moto)', () => {
  let sm: SecretsManagerClient;
  let ctx: CountingContext;
  let client: ProviderClient;

  async function connect(extra: Partial<AwsSecretsManagerProviderSpec> = {}, name = 'sm'): Promise<ProviderClient> {
    ctx = memoryContext(motoKeys.secrets, undefined);
    const store = awsClusterStore('awsSecretsManager', motoSpec({ auth: motoKeys.auth, ...extra }), name);
    return awsSecretsManagerProvider.connect(store, ctx);
  }

  // ProviderClient.find is typed without tags; the AWS clients take the whole FindSpec.
  const find = (query: FindSpec) => client.find(query);

  async function create(name: string, value: string, tags?: Record<string, string>): Promise<string> {
    const out = await sm.send(
      new CreateSecretCommand({
        Name: name,
        SecretString: value,
        ...(tags ? { Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) } : {}),
      }),
    );
    return out.ARN ?? '';
  }

  beforeEach(async () => {
    await sharedMoto().reset();
    sm = new SecretsManagerClient(sharedMoto().clientConfig());
    client = await connect();
  });

  afterEach(async () => {
    await client.close();
    sm.destroy();
  });

  it('reads a property, the whole value, and all properties of a JSON secret', async () => {
    const doc = { username: 'app', password: 's3cret', db: { port: 5432 } };
    await create('app/db', JSON.stringify(doc));
    await create('app/token', 'plain-token');

    expect(await client.getValue({ key: 'app/db', property: 'password' })).to.equal('s3cret');
    expect(await client.getValue({ key: 'app/db', property: 'db.port' })).to.equal('5432');
    expect(JSON.parse(await client.getValue({ key: 'app/db' }))).to.deep.equal(doc);
    expect(await client.getValue({ key: 'app/token' })).to.equal('plain-token');
    expect(await client.getProperties('app/db')).to.deep.equal({
      username: 'app',
      password: 's3cret',
      db: '{"port":5432}',
    });
    expect(await client.getProperties('app/token')).to.deep.equal({ value: 'plain-token' });
    expect(ctx.count('GetSecretValue')).to.equal(6);
  });

  it('reads by ARN and reports missing keys and properties without values', async () => {
    const arn = await create('app/db', '{"password":"s3cret"}');
    expect(await client.getValue({ key: arn, property: 'password' })).to.equal('s3cret');

    const missing = await rejectionOf(client.getValue({ key: 'app/nope' }));
    expect(missing).to.be.instanceOf(KeyNotFoundError);
    expect(missing.message).to.contain('"app/nope"').and.contain('ResourceNotFoundException');

    const noProperty = await rejectionOf(client.getValue({ key: 'app/db', property: 'user' }));
    expect(noProperty).to.be.instanceOf(KeyNotFoundError);
    expect(noProperty.message).to.equal('secret "app/db" has no property "user"');
    expect(noProperty.message).to.not.contain('s3cret');

    expect(await rejectionOf(client.getProperties('app/nope'))).to.be.instanceOf(KeyNotFoundError);
  });

  it('sees an update on the next read, and reads AWSPREVIOUS and version ids', async () => {
    await create('app/rotating', 'v1');
    expect(await client.getValue({ key: 'app/rotating' })).to.equal('v1');
    const put = await sm.send(new PutSecretValueCommand({ SecretId: 'app/rotating', SecretString: 'v2' }));
    expect(await client.getValue({ key: 'app/rotating' })).to.equal('v2');
    expect(await client.getValue({ key: 'app/rotating', version: 'AWSPREVIOUS' })).to.equal('v1');
    expect(await client.getValue({ key: 'app/rotating', version: 'AWSCURRENT' })).to.equal('v2');
    expect(put.VersionId).to.be.a('string');
    expect(await client.getValue({ key: 'app/rotating', version: put.VersionId })).to.equal('v2');
    const noStage = await rejectionOf(client.getValue({ key: 'app/rotating', version: 'NOPE' }));
    expect(noStage).to.be.instanceOf(KeyNotFoundError);
  });

  it('getValues: 25 keys in 2 BatchGetSecretValue calls, a missing one as KeyNotFoundError', async () => {
    for (let i = 0; i < 24; i++) await create(`bulk/${i}`, JSON.stringify({ n: String(i) }));
    await create('bulk/rotating', 'old');
    await sm.send(new PutSecretValueCommand({ SecretId: 'bulk/rotating', SecretString: 'new' }));
    ctx.operations.length = 0;

    const refs: RemoteRef[] = [
      ...Array.from({ length: 24 }, (_, i) => ({ key: `bulk/${i}`, property: 'n' })),
      { key: 'bulk/0' }, // same secret, whole value: no extra request
      { key: 'bulk/missing' },
      { key: 'bulk/1', property: 'absent' },
      { key: 'bulk/rotating', version: 'AWSPREVIOUS' },
    ];
    const values = await client.getValues?.(refs);
    if (!values) throw new Error('getValues is missing');

    expect(ctx.count('BatchGetSecretValue')).to.equal(2);
    // Only the non-current version is read on its own.
    expect(ctx.count('GetSecretValue')).to.equal(1);
    for (let i = 0; i < 24; i++) expect(values.get(refKey({ key: `bulk/${i}`, property: 'n' }))).to.equal(String(i));
    expect(values.get(refKey({ key: 'bulk/0' }))).to.equal('{"n":"0"}');
    const missing = values.get(refKey({ key: 'bulk/missing' }));
    expect(missing).to.be.instanceOf(KeyNotFoundError);
    expect((missing as KeyNotFoundError).key).to.equal('bulk/missing');
    expect(values.get(refKey({ key: 'bulk/1', property: 'absent' }))).to.be.instanceOf(KeyNotFoundError);
    expect(values.get(refKey({ key: 'bulk/rotating', version: 'AWSPREVIOUS' }))).to.equal('old');
    expect(values.size).to.equal(refs.length);
  });

  it('finds secrets by prefix, by regexp and by tag', async () => {
    await create('team/a', '{"user":"a"}', { env: 'prod', team: 'x' });
    await create('team/b', 'plain-b', { env: 'dev', team: 'x' });
    await create('team-other/c', 'c', { env: 'prod' });
    await create('other/d', 'd', { env: 'prod', team: 'x' });

    const byPrefix = await find({ prefix: 'team/' });
    expect([...byPrefix.keys()].sort()).to.deep.equal(['team/a', 'team/b']);
    expect(byPrefix.get('team/a')).to.deep.equal({ user: 'a' });
    expect(byPrefix.get('team/b')).to.deep.equal({ value: 'plain-b' });

    const byRegexp = await find({ nameRegexp: '^(team|other)/[ad]$' });
    expect([...byRegexp.keys()].sort()).to.deep.equal(['other/d', 'team/a']);

    const byTags = await find({ tags: { env: 'prod', team: 'x' } });
    expect([...byTags.keys()].sort()).to.deep.equal(['other/d', 'team/a']);

    const prefixAndTag = await find({ prefix: 'team', tags: { env: 'prod' } });
    expect([...prefixAndTag.keys()].sort()).to.deep.equal(['team-other/c', 'team/a']);

    expect((await find({ prefix: 'nothing/' })).size).to.equal(0);
    expect(ctx.count('ListSecrets')).to.equal(5);
    // Values were read in batches, not one by one.
    expect(ctx.count('GetSecretValue')).to.equal(0);
  });

  it('find stops listing past maxEntries and reads no value (TooManyEntries)', async () => {
    // More than one ListSecrets page (100): the bound is hit on the first page, the second is never asked for.
    for (let i = 0; i < 105; i++) await create(`many/${String(i).padStart(3, '0')}`, `v${i}`);
    const err = await rejectionOf(client.find({ prefix: 'many/' }, { maxEntries: 5 }));
    expect(err).to.be.instanceOf(LimitError);
    expect((err as LimitError).reason).to.equal('TooManyEntries');
    expect((err as LimitError).retry).to.equal('transient');
    expect(ctx.count('ListSecrets')).to.equal(1);
    expect(ctx.count('BatchGetSecretValue') + ctx.count('GetSecretValue')).to.equal(0);
    // The regexp narrows before counting.
    expect((await client.find({ nameRegexp: '^many/00[0-4]$' }, { maxEntries: 5 })).size).to.equal(5);
    expect((await client.find({ prefix: 'many/' }, { maxEntries: 105 })).size).to.equal(105);
  });

  it('leaves out a secret scheduled for deletion', async () => {
    await create('gone/a', 'a');
    await create('gone/b', 'b');
    await sm.send(new DeleteSecretCommand({ SecretId: 'gone/b', RecoveryWindowInDays: 7 }));
    expect([...(await find({ prefix: 'gone/' })).keys()]).to.deep.equal(['gone/a']);
    expect(await rejectionOf(client.getValue({ key: 'gone/b' }))).to.be.instanceOf(KeyNotFoundError);
    const values = await client.getValues?.([{ key: 'gone/a' }, { key: 'gone/b' }]);
    expect(values?.get(refKey({ key: 'gone/a' }))).to.equal('a');
    expect(values?.get(refKey({ key: 'gone/b' }))).to.be.instanceOf(KeyNotFoundError);
  });

  it('checks the store, and takes every request from the store budget', async () => {
    const budget = storeBudgets.for(awsClusterStore('awsSecretsManager', motoSpec(), 'sm'), undefined);
    const before = budget.used;
    await client.check();
    await create('x', 'y');
    await client.getValue({ key: 'x' });
    expect(ctx.operations).to.deep.equal(['ListSecrets', 'GetSecretValue']);
    expect(budget.used - before).to.equal(2);
  });

  it('fails the check with a configuration error when the credentials Secret is missing', async () => {
    const store = awsClusterStore('awsSecretsManager', motoSpec({ auth: motoKeys.auth }), 'broken');
    const err = await rejectionOf(awsSecretsManagerProvider.connect(store, memoryContext({}, undefined)));
    expect(err).to.be.instanceOf(ProviderConfigError);
    expect(err.message).to.contain('Secret creds/aws has no key "id"');
  });

  it('exposes KMS decryption of secretsync ciphertexts when the store declares decrypt.kms', async () => {
    expect(client.decrypt).to.equal(undefined);
    const kms = new KMSClient(sharedMoto().clientConfig());
    try {
      const key = await kms.send(new CreateKeyCommand({}));
      const binding = { namespace: 'team-a', managedSecret: 'app', secretKey: 'password' };
      const ciphertext = await new KmsEncryptor(kms).encrypt('s3cret', {
        keyId: key.KeyMetadata?.KeyId ?? '',
        scope: 'namespace',
        binding,
      });
      await create('encrypted/password', ciphertext);

      const withKms = await connect({ decrypt: { kms: {} } }, 'sm-kms');
      try {
        const fetched = await withKms.getValue({ key: 'encrypted/password' });
        expect(fetched).to.equal(ciphertext);
        expect(withKms.decrypt).to.be.a('function');
        expect(await withKms.decrypt?.(fetched, binding)).to.equal('s3cret');
        expect(ctx.count('Decrypt')).to.equal(1);
      } finally {
        await withKms.close();
      }
    } finally {
      kms.destroy();
    }
  });
});
