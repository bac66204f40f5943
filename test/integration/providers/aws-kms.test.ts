// KMS ciphertexts against a real KMS API (moto): the encryption context really
// binds a ciphertext to its place, envelopes round-trip, data keys are cached,
// and the encrypt/reencrypt commands work end to end with the standard AWS setup.
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { Command, CommanderError } from 'commander';
import { randomBytes } from 'node:crypto';
import { parse } from 'yaml';
import type { ManagedSecret, SecretStore } from '../../../src/api/types.js';
import { registerEncryptCommands } from '../../../src/cli/commands/encrypt.js';
import type { CliIo } from '../../../src/cli/main.js';
import { encodeCiphertext, parseCiphertext, TEXT_PREFIX } from '../../../src/crypto/ciphertext.js';
import { KmsDecryptor, KmsEncryptor, awsKmsProvider } from '../../../src/providers/aws-kms/index.js';
import {
  DecryptError,
  ProviderConfigError,
  type CiphertextBinding,
  type ProviderContext,
} from '../../../src/providers/provider.js';
import { sharedMoto } from '../env.js';

const here: CiphertextBinding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with ${String(err)}`);
  }
  throw new Error('expected a rejection');
}

describe('awsKms ciphertexts against a KMS API (moto)', () => {
  let kms: KMSClient;
  let keyArn: string;
  let observed: string[];
  let decryptor: KmsDecryptor;
  let encryptor: KmsEncryptor;

  beforeEach(async () => {
    await sharedMoto().reset();
    kms = new KMSClient(sharedMoto().clientConfig());
    keyArn = await createKey(kms, 'secretsync-test');
    observed = [];
    decryptor = new KmsDecryptor(kms, (operation, call) => {
      observed.push(operation);
      return call();
    });
    encryptor = new KmsEncryptor(kms);
  });

  afterEach(() => {
    kms.destroy();
  });

  async function expectRefused(ciphertext: string, binding: CiphertextBinding): Promise<void> {
    const err = await rejection(decryptor.decrypt(ciphertext, binding));
    expect(err, err.message).to.be.instanceOf(DecryptError);
    expect(err.message).to.include(`secret key "${binding.secretKey}"`);
    expect(err.message).to.match(/scope \w+/);
  }

  for (const mode of ['direct', 'envelope'] as const) {
    it(`a strict ${mode} ciphertext decrypts only in its own namespace, ManagedSecret and secret key`, async () => {
      const value = `pw-${randomBytes(8).toString('hex')}`;
      const ciphertext = await encryptor.encrypt(value, {
        keyId: 'alias/secretsync-test',
        scope: 'strict',
        binding: here,
        mode,
      });
      expect(parseCiphertext(ciphertext)).to.include({ mode, scope: 'strict', keyId: keyArn });
      expect(await decryptor.decrypt(ciphertext, here)).to.equal(value);
      await expectRefused(ciphertext, { ...here, namespace: 'team-b' });
      await expectRefused(ciphertext, { ...here, managedSecret: 'other' });
      await expectRefused(ciphertext, { ...here, secretKey: 'username' });
    });
  }

  it('a namespace ciphertext works across the ManagedSecrets of its namespace, not across namespaces', async () => {
    const ciphertext = await encryptor.encrypt('shared-in-team-a', {
      keyId: keyArn,
      scope: 'namespace',
      binding: here,
    });
    expect(await decryptor.decrypt(ciphertext, here)).to.equal('shared-in-team-a');
    expect(
      await decryptor.decrypt(ciphertext, { namespace: 'team-a', managedSecret: 'api', secretKey: 'token' }),
    ).to.equal('shared-in-team-a');
    await expectRefused(ciphertext, { ...here, namespace: 'team-b' });
  });

  it('a cluster ciphertext works anywhere', async () => {
    const ciphertext = await encryptor.encrypt('everywhere', { keyId: keyArn, scope: 'cluster', binding: {} });
    for (const namespace of ['team-a', 'team-b', 'kube-system']) {
      expect(await decryptor.decrypt(ciphertext, { namespace, managedSecret: 'm', secretKey: 'k' })).to.equal(
        'everywhere',
      );
    }
  });

  it('a 64 KiB value round-trips through the envelope format', async () => {
    const value = randomBytes(48 * 1024)
      .toString('base64')
      .slice(0, 64 * 1024);
    expect(value).to.have.length(64 * 1024);
    const ciphertext = await encryptor.encrypt(value, { keyId: keyArn, scope: 'strict', binding: here });
    const parsed = parseCiphertext(ciphertext);
    expect(parsed.mode).to.equal('envelope');
    expect(await decryptor.decrypt(ciphertext, here)).to.equal(value);
    // And a modified payload is caught even though the data key is cached.
    if (parsed.mode !== 'envelope') throw new Error('expected an envelope');
    const payload = Buffer.from(parsed.payload);
    payload[100] = (payload[100] ?? 0) ^ 0x20;
    const tampered = TEXT_PREFIX + encodeCiphertext({ ...parsed, payload }).toString('base64url');
    await expectRefused(tampered, here);
  });

  it('100 values sharing one data key cost one KMS Decrypt', async () => {
    const dataKey = await encryptor.generateDataKey(keyArn, 'cluster', {});
    const values = Array.from({ length: 100 }, (_, i) => `value-${i}-${randomBytes(4).toString('hex')}`);
    const ciphertexts: string[] = [];
    for (const value of values) {
      ciphertexts.push(await encryptor.encrypt(value, { keyId: keyArn, scope: 'cluster', binding: {}, dataKey }));
    }
    dataKey.destroy();
    const decrypted = await Promise.all(
      ciphertexts.map((c, i) =>
        decryptor.decrypt(c, { namespace: `ns-${i % 5}`, managedSecret: `ms-${i}`, secretKey: 'v' }),
      ),
    );
    expect(decrypted).to.deep.equal(values);
    expect(observed).to.deep.equal(['Decrypt']);
    expect(decryptor.cacheStats()).to.include({ misses: 1, size: 1 });
  });

  it('the awsKms provider decrypts with static credentials from a Secret and passes its check', async () => {
    const { endpoint, region, credentials } = sharedMoto().clientConfig();
    const ops: string[] = [];
    const secrets: Record<string, string> = {
      'team-a/aws/id': credentials.accessKeyId,
      'team-a/aws/secret': credentials.secretAccessKey,
    };
    const ctx: ProviderContext = {
      storeNamespace: 'team-a',
      allowOperatorIdentityForNamespacedStores: false,
      // A namespaced store at moto: the admin allows that endpoint.
      policy: { allowedEndpoints: [endpoint], localStoreRoot: undefined },
      observe: (operation, call) => {
        ops.push(operation);
        return call();
      },
      requestServiceAccountToken: async () => {
        throw new Error('not used');
      },
      readSecretKey: async (namespace, name, key) => {
        const value = secrets[`${namespace}/${name}/${key}`];
        if (value === undefined) throw new ProviderConfigError(`no key ${key}`);
        return Buffer.from(value);
      },
    };
    const store: SecretStore = {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretStore',
      metadata: { name: 'kms', namespace: 'team-a' },
      spec: {
        provider: {
          awsKms: {
            region,
            endpoint,
            auth: {
              secretRef: {
                accessKeyIdSecretRef: { name: 'aws', key: 'id' },
                secretAccessKeySecretRef: { name: 'aws', key: 'secret' },
              },
            },
          },
        },
      },
    };
    const client = await awsKmsProvider.connect(store, ctx);
    try {
      await client.check();
      const ciphertext = await encryptor.encrypt('via the provider', { keyId: keyArn, scope: 'strict', binding: here });
      expect(await client.decrypt?.(ciphertext, here)).to.equal('via the provider');
      expect(await client.decrypt?.(ciphertext, here)).to.equal('via the provider');
      expect(
        await rejection(client.decrypt?.(ciphertext, { ...here, namespace: 'team-b' }) ?? Promise.resolve()),
      ).to.be.instanceOf(DecryptError);
      expect(await rejection(client.getValue({ key: 'x' }))).to.be.instanceOf(ProviderConfigError);
      expect(ops).to.deep.equal(['ListKeys', 'Decrypt', 'Decrypt']);
    } finally {
      await client.close();
    }
  });

  describe('the encrypt and reencrypt commands', () => {
    const saved: Record<string, string | undefined> = {};
    const AWS_ENV = [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SESSION_TOKEN',
      'AWS_PROFILE',
      'AWS_REGION',
      'AWS_DEFAULT_REGION',
      'AWS_ENDPOINT_URL',
      'AWS_ENDPOINT_URL_KMS',
    ];

    before(() => {
      for (const name of AWS_ENV) {
        saved[name] = process.env[name];
        delete process.env[name];
      }
      // The standard AWS environment, as a person or a CI job would set it.
      const { credentials, region, endpoint } = sharedMoto().clientConfig();
      process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
      process.env.AWS_REGION = region;
      process.env.AWS_ENDPOINT_URL = endpoint;
    });

    after(() => {
      for (const name of AWS_ENV) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    });

    async function cli(args: string[], stdin: string): Promise<{ code: number; out: string; err: string }> {
      const out: string[] = [];
      const err: string[] = [];
      const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), readStdin: async () => Buffer.from(stdin) };
      const program = new Command('secretsync')
        .exitOverride()
        .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
      registerEncryptCommands(program, io);
      for (const cmd of program.commands) cmd.exitOverride();
      let code = 0;
      try {
        await program.parseAsync(['node', 'secretsync', ...args]);
      } catch (e) {
        code = e instanceof CommanderError ? e.exitCode || 1 : 1;
        if (!(e instanceof CommanderError)) err.push(e instanceof Error ? e.message : String(e));
      }
      return { code, out: out.join('\n'), err: err.join('\n') };
    }

    const BIND = ['--namespace', 'team-a', '--name', 'db', '--secret-key', 'password'];

    it('encrypt reads stdin and prints a ciphertext that decrypts with its binding only', async () => {
      const value = `pw-${randomBytes(8).toString('hex')}`;
      const r = await cli(['encrypt', '--key', 'alias/secretsync-test', ...BIND], `${value}\n`);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.not.include(value);
      expect(parseCiphertext(r.out).keyId).to.equal(keyArn);
      expect(await decryptor.decrypt(r.out, here)).to.equal(value);
      await expectRefused(r.out, { ...here, managedSecret: 'other' });
    });

    it('flags override the environment', async () => {
      const { region, endpoint } = sharedMoto().clientConfig();
      process.env.AWS_ENDPOINT_URL = 'http://127.0.0.1:9';
      try {
        const r = await cli(['encrypt', '--key', keyArn, ...BIND, '--region', region, '--endpoint', endpoint], 'v');
        expect(r.code, r.err).to.equal(0);
        expect(await decryptor.decrypt(r.out, here)).to.equal('v');
      } finally {
        process.env.AWS_ENDPOINT_URL = endpoint;
      }
    });

    it('encrypt --output yaml prints a ManagedSecret whose ciphertext decrypts', async () => {
      const value = 'y'.repeat(5000);
      const r = await cli(['encrypt', '--key', keyArn, ...BIND, '--output', 'yaml', '--store', 'aws-kms'], value);
      expect(r.code, r.err).to.equal(0);
      const manifest = parse(r.out) as ManagedSecret;
      expect(manifest.apiVersion).to.equal('secretsync.io/v1alpha1');
      expect(manifest.kind).to.equal('ManagedSecret');
      expect(manifest.metadata).to.deep.equal({ name: 'db', namespace: 'team-a' });
      expect(manifest.spec.storeRef).to.deep.equal({ name: 'aws-kms' });
      const item = manifest.spec.data?.[0];
      expect(item?.secretKey).to.equal('password');
      expect(parseCiphertext(item?.ciphertext ?? '').mode).to.equal('envelope');
      expect(await decryptor.decrypt(item?.ciphertext ?? '', here)).to.equal(value);
    });

    it('reencrypt moves ciphertexts to a second key, which the new header names', async () => {
      const newKeyArn = await createKey(kms, 'secretsync-next');
      const small = await cli(['encrypt', '--key', keyArn, ...BIND], 'small');
      const big = await cli(['encrypt', '--key', keyArn, ...BIND], 'b'.repeat(4000));
      const lines = await cli(['reencrypt', '--key', 'alias/secretsync-next', ...BIND], `${small.out}\n${big.out}\n`);
      expect(lines.code, lines.err).to.equal(0);
      const [a, b] = lines.out.split('\n');
      expect(parseCiphertext(a ?? '')).to.include({ mode: 'direct', keyId: newKeyArn, scope: 'strict' });
      expect(parseCiphertext(b ?? '')).to.include({ mode: 'envelope', keyId: newKeyArn, scope: 'strict' });
      expect(await decryptor.decrypt(a ?? '', here)).to.equal('small');
      expect(await decryptor.decrypt(b ?? '', here)).to.equal('b'.repeat(4000));

      const manifest = await cli(['encrypt', '--key', keyArn, ...BIND, '--output', 'yaml'], 'in yaml');
      const moved = await cli(['reencrypt', '--key', newKeyArn, '--input', 'yaml'], manifest.out);
      expect(moved.code, moved.err).to.equal(0);
      const ciphertext = (parse(moved.out) as ManagedSecret).spec.data?.[0]?.ciphertext ?? '';
      expect(parseCiphertext(ciphertext).keyId).to.equal(newKeyArn);
      expect(await decryptor.decrypt(ciphertext, here)).to.equal('in yaml');
    });
  });
});

async function createKey(kms: KMSClient, alias: string): Promise<string> {
  const key = await kms.send(new CreateKeyCommand({ Description: `secretsync ${alias}` }));
  const arn = key.KeyMetadata?.Arn;
  const id = key.KeyMetadata?.KeyId;
  if (!arn || !id) throw new Error('CreateKey returned no key');
  await kms.send(new CreateAliasCommand({ AliasName: `alias/${alias}`, TargetKeyId: id }));
  return arn;
}
