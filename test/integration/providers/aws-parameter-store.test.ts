// The awsParameterStore provider against moto through the real SDK clients.
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  AddTagsToResourceCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  SSMClient,
  type ParameterType,
} from '@aws-sdk/client-ssm';
import { expect } from 'chai';
import type { AwsParameterStoreProviderSpec, FindSpec, RemoteRef } from '../../../src/api/types.js';
import { KmsEncryptor } from '../../../src/providers/aws-kms/index.js';
import { awsParameterStoreProvider } from '../../../src/providers/aws-parameter-store/index.js';
import { LimitError } from '../../../src/api/errors.js';
import { KeyNotFoundError, refKey, type ProviderClient } from '../../../src/providers/provider.js';
import { rejectionOf } from '../../unit/helpers/index.js';
import { sharedMoto } from '../env.js';
import { awsClusterStore, memoryContext, motoKeys, motoSpec, type CountingContext } from './aws-context.js';

describe('awsParameterStore provider (moto)', () => {
  let ssm: SSMClient;
  let ctx: CountingContext;
  let client: ProviderClient;
  const find = (query: FindSpec) => client.find(query);

  async function connect(extra: Partial<AwsParameterStoreProviderSpec> = {}, name = 'ssm'): Promise<ProviderClient> {
    ctx = memoryContext(motoKeys.secrets, undefined);
    const store = awsClusterStore('awsParameterStore', motoSpec({ auth: motoKeys.auth, ...extra }), name);
    return awsParameterStoreProvider.connect(store, ctx);
  }

  async function put(name: string, value: string, type: ParameterType = 'String'): Promise<number> {
    const out = await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: type, Overwrite: true }));
    return out.Version ?? 0;
  }

  beforeEach(async () => {
    await sharedMoto().reset();
    ssm = new SSMClient(sharedMoto().clientConfig());
    client = await connect();
  });

  afterEach(async () => {
    await client.close();
    ssm.destroy();
  });

  it('reads a SecureString decrypted, a property of a JSON value, and all its properties', async () => {
    await put('/app/password', 's3cret', 'SecureString');
    await put('/app/config', JSON.stringify({ user: 'app', port: 5432 }), 'SecureString');
    await put('plain-name', 'flat');

    expect(await client.getValue({ key: '/app/password' })).to.equal('s3cret');
    expect(await client.getValue({ key: '/app/config', property: 'port' })).to.equal('5432');
    expect(await client.getValue({ key: 'plain-name' })).to.equal('flat');
    expect(await client.getProperties('/app/config')).to.deep.equal({ user: 'app', port: '5432' });
    expect(await client.getProperties('/app/password')).to.deep.equal({ value: 's3cret' });

    const missing = await rejectionOf(client.getValue({ key: '/app/nope' }));
    expect(missing).to.be.instanceOf(KeyNotFoundError);
    expect(missing.message).to.contain('"/app/nope"').and.contain('ParameterNotFound');
    const noProperty = await rejectionOf(client.getValue({ key: '/app/config', property: 'password' }));
    expect(noProperty).to.be.instanceOf(KeyNotFoundError);
    expect(noProperty.message).to.equal('parameter "/app/config" has no property "password"');
  });

  it('reads older versions by number and by label', async () => {
    await put('/app/rotating', 'v1', 'SecureString');
    await put('/app/rotating', 'v2', 'SecureString');
    await ssm.send(
      new LabelParameterVersionCommand({ Name: '/app/rotating', ParameterVersion: 1, Labels: ['stable'] }),
    );

    expect(await client.getValue({ key: '/app/rotating' })).to.equal('v2');
    expect(await client.getValue({ key: '/app/rotating', version: '1' })).to.equal('v1');
    expect(await client.getValue({ key: '/app/rotating', version: '2' })).to.equal('v2');
    expect(await client.getValue({ key: '/app/rotating', version: 'stable' })).to.equal('v1');

    const noVersion = await rejectionOf(client.getValue({ key: '/app/rotating', version: '9' }));
    expect(noVersion).to.be.instanceOf(KeyNotFoundError);
    expect((noVersion as KeyNotFoundError).key).to.equal('/app/rotating');
    expect(noVersion.message).to.contain('/app/rotating:9');
    expect(await rejectionOf(client.getValue({ key: '/app/rotating', version: 'nolabel' }))).to.be.instanceOf(
      KeyNotFoundError,
    );
  });

  it('getValues: 10 names per GetParameters call, missing ones as KeyNotFoundError', async () => {
    for (let i = 0; i < 12; i++) await put(`/bulk/${i}`, `value-${i}`, 'SecureString');
    await put('/bulk/0', 'value-0-v2', 'SecureString');
    ctx.operations.length = 0;
    const refs: RemoteRef[] = [
      ...Array.from({ length: 12 }, (_, i) => ({ key: `/bulk/${i}` })),
      { key: '/bulk/missing' },
      { key: '/bulk/0', version: '1' },
    ];
    const values = await client.getValues?.(refs);
    if (!values) throw new Error('getValues is missing');
    expect(ctx.count('GetParameters')).to.equal(2);
    expect(ctx.count('GetParameter')).to.equal(1);
    expect(values.get(refKey({ key: '/bulk/0' }))).to.equal('value-0-v2');
    expect(values.get(refKey({ key: '/bulk/11' }))).to.equal('value-11');
    expect(values.get(refKey({ key: '/bulk/0', version: '1' }))).to.equal('value-0');
    expect(values.get(refKey({ key: '/bulk/missing' }))).to.be.instanceOf(KeyNotFoundError);
  });

  it('finds by path (recursive, decrypted), by regexp and by tag', async () => {
    await put('/shared/a', 'A', 'SecureString');
    await put('/shared/deep/b', '{"user":"b"}', 'SecureString');
    await put('/shared-not/c', 'C');
    await put('/other/d', 'D');
    await put('flat-e', 'E');
    await ssm.send(
      new AddTagsToResourceCommand({
        ResourceType: 'Parameter',
        ResourceId: '/other/d',
        Tags: [{ Key: 'env', Value: 'prod' }],
      }),
    );

    const byPath = await find({ prefix: '/shared/' });
    expect([...byPath.keys()].sort()).to.deep.equal(['/shared/a', '/shared/deep/b']);
    expect(byPath.get('/shared/a')).to.deep.equal({ value: 'A' });
    expect(byPath.get('/shared/deep/b')).to.deep.equal({ user: 'b' });
    expect(ctx.count('GetParametersByPath')).to.equal(1);

    const partialSegment = await find({ prefix: '/shared' });
    expect([...partialSegment.keys()].sort()).to.deep.equal(['/shared-not/c', '/shared/a', '/shared/deep/b']);

    const byRegexp = await find({ nameRegexp: '/(a|c)$' });
    expect([...byRegexp.keys()].sort()).to.deep.equal(['/shared-not/c', '/shared/a']);
    expect(byRegexp.get('/shared/a')).to.deep.equal({ value: 'A' });

    const flat = await find({ prefix: 'flat-' });
    expect([...flat.keys()]).to.deep.equal(['flat-e']);

    const byTag = await find({ tags: { env: 'prod' } });
    expect([...byTag.keys()]).to.deep.equal(['/other/d']);
    expect(ctx.count('DescribeParameters')).to.be.at.least(3);
  });

  it('find stops listing past maxEntries and reads no value (TooManyEntries), by path and by description', async () => {
    for (let i = 0; i < 25; i++) await put(`/many/${String(i).padStart(2, '0')}`, `v${i}`);
    // By path (10 a page, values included): the first page passes the bound.
    const byPath = await rejectionOf(client.find({ prefix: '/many/' }, { maxEntries: 3 }));
    expect(byPath).to.be.instanceOf(LimitError);
    expect((byPath as LimitError).reason).to.equal('TooManyEntries');
    expect(ctx.count('GetParametersByPath')).to.equal(1);
    // By description (a regexp): no value is read once the names pass the bound.
    const byRegexp = await rejectionOf(client.find({ nameRegexp: '^/many/' }, { maxEntries: 3 }));
    expect((byRegexp as LimitError).reason).to.equal('TooManyEntries');
    expect(ctx.count('GetParameters') + ctx.count('GetParameter')).to.equal(0);
    expect((await client.find({ prefix: '/many/' }, { maxEntries: 25 })).size).to.equal(25);
    expect((await client.find({ nameRegexp: '^/many/0' }, { maxEntries: 10 })).size).to.equal(10);
  });

  it('checks the store', async () => {
    await client.check();
    expect(ctx.operations).to.deep.equal(['DescribeParameters']);
  });

  it('exposes KMS decryption when the store declares decrypt.kms', async () => {
    const kms = new KMSClient(sharedMoto().clientConfig());
    try {
      const key = await kms.send(new CreateKeyCommand({}));
      const binding = { namespace: 'team-a', managedSecret: 'app', secretKey: 'token' };
      const ciphertext = await new KmsEncryptor(kms).encrypt('t0ken', {
        keyId: key.KeyMetadata?.KeyId ?? '',
        scope: 'strict',
        binding,
      });
      await put('/encrypted/token', ciphertext);
      const withKms = await connect({ decrypt: { kms: { region: sharedMoto().region } } }, 'ssm-kms');
      try {
        const fetched = await withKms.getValue({ key: '/encrypted/token' });
        expect(await withKms.decrypt?.(fetched, binding)).to.equal('t0ken');
      } finally {
        await withKms.close();
      }
    } finally {
      kms.destroy();
    }
  });
});
