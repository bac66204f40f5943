import { expect } from 'chai';
import { encodeCiphertext, parseCiphertext, TEXT_PREFIX } from '../../../../src/crypto/ciphertext.js';
import { KmsDecryptor, KmsEncryptor, isCiphertext } from '../../../../src/providers/aws-kms/index.js';
import {
  DecryptError,
  ProviderConfigError,
  ProviderError,
  type CiphertextBinding,
} from '../../../../src/providers/provider.js';
import { rejectionOf } from '../../helpers/index.js';
import { FakeKms, kmsError } from './fake-kms.js';

const SECRET = 'pw-0123456789-secret';
const here: CiphertextBinding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };

describe('aws-kms/KmsDecryptor', () => {
  let kms: FakeKms;
  let key: string;
  let encryptor: KmsEncryptor;
  let observed: string[];
  let decryptor: KmsDecryptor;

  beforeEach(() => {
    kms = new FakeKms();
    key = kms.createKey('alias/app');
    encryptor = new KmsEncryptor(kms);
    observed = [];
    decryptor = new KmsDecryptor(kms, (operation, call) => {
      observed.push(operation);
      return call();
    });
  });

  async function expectRefused(
    ciphertext: string,
    binding: CiphertextBinding,
    pattern?: RegExp,
  ): Promise<DecryptError> {
    const err = await rejectionOf(decryptor.decrypt(ciphertext, binding));
    expect(err, err.message).to.be.instanceOf(DecryptError);
    expect(err.message).to.not.include(SECRET);
    if (pattern) expect(err.message).to.match(pattern);
    return err as DecryptError;
  }

  for (const mode of ['direct', 'envelope'] as const) {
    it(`decrypts ${mode} ciphertexts where it was made for`, async () => {
      const ciphertext = await encryptor.encrypt(SECRET, { keyId: 'alias/app', scope: 'strict', binding: here, mode });
      expect(isCiphertext(ciphertext)).to.equal(true);
      expect(ciphertext).to.not.include(Buffer.from(SECRET).toString('base64url').slice(0, 10));
      const parsed = parseCiphertext(ciphertext);
      expect(parsed.mode).to.equal(mode);
      expect(parsed.keyId).to.equal(key); // the ARN KMS reported, not the alias given
      expect(await decryptor.decrypt(ciphertext, here)).to.equal(SECRET);
      expect(observed).to.deep.equal(['Decrypt']);
    });

    it(`refuses a strict ${mode} ciphertext in another namespace, ManagedSecret or secret key`, async () => {
      const ciphertext = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding: here, mode });
      expect(await decryptor.decrypt(ciphertext, here)).to.equal(SECRET);
      for (const elsewhere of [
        { ...here, namespace: 'team-b' },
        { ...here, managedSecret: 'other' },
        { ...here, secretKey: 'username' },
      ]) {
        const err = await expectRefused(ciphertext, elsewhere, /scope strict/);
        expect(err.message).to.include(`secret key "${elsewhere.secretKey}"`);
        expect(err.message).to.match(/KMS refused|InvalidCiphertextException/);
      }
    });
  }

  it('a namespace ciphertext works in any ManagedSecret of its namespace only', async () => {
    const ciphertext = await encryptor.encrypt(SECRET, { keyId: key, scope: 'namespace', binding: here });
    expect(await decryptor.decrypt(ciphertext, { namespace: 'team-a', managedSecret: 'x', secretKey: 'y' })).to.equal(
      SECRET,
    );
    await expectRefused(ciphertext, { ...here, namespace: 'team-b' }, /scope namespace.*another namespace/);
  });

  it('a cluster ciphertext works anywhere', async () => {
    const ciphertext = await encryptor.encrypt(SECRET, { keyId: key, scope: 'cluster', binding: {} });
    for (const binding of [here, { namespace: 'ns2', managedSecret: 'm', secretKey: 'k' }]) {
      expect(await decryptor.decrypt(ciphertext, binding)).to.equal(SECRET);
    }
  });

  it('round-trips empty and long values through an envelope', async () => {
    for (const value of ['', 'x'.repeat(70_000)]) {
      const ciphertext = await encryptor.encrypt(value, { keyId: key, scope: 'strict', binding: here });
      expect(parseCiphertext(ciphertext).mode).to.equal('envelope');
      expect(await decryptor.decrypt(ciphertext, here)).to.equal(value);
    }
  });

  for (const mode of ['direct', 'envelope'] as const) {
    it(`detects a flip of any byte of ${mode} ciphertexts`, async () => {
      const ciphertext = await encryptor.encrypt('a modest value', {
        keyId: key,
        scope: 'strict',
        binding: here,
        mode,
      });
      // Warm the cache first: tampering must be caught even when KMS is not asked again.
      expect(await decryptor.decrypt(ciphertext, here)).to.equal('a modest value');
      const bytes = encodeCiphertext(parseCiphertext(ciphertext));
      for (let i = 0; i < bytes.length; i++) {
        const tampered = Buffer.from(bytes);
        tampered[i] = (tampered[i] ?? 0) ^ 0x01;
        const err = await rejectionOf(decryptor.decrypt(TEXT_PREFIX + tampered.toString('base64url'), here));
        expect(err, `byte ${i}: ${err.message}`).to.be.instanceOf(DecryptError);
      }
    });
  }

  it('names the problem for text that is not a ciphertext, or of another version', async () => {
    await expectRefused('hunter2', here, /secret key "password".*not a secretsync ciphertext/);
    await expectRefused('secretsync:v9:AAAA', here, /unsupported version v9/);
    expect(kms.calls).to.deep.equal([]);
  });

  it('refuses a value that is not UTF-8', async () => {
    const ciphertext = await encryptor.encrypt(Buffer.from([0xff, 0xfe]), {
      keyId: key,
      scope: 'strict',
      binding: here,
    });
    await expectRefused(ciphertext, here, /not UTF-8/);
    expect(await decryptor.decryptBytes(ciphertext, here)).to.deep.equal(Buffer.from([0xff, 0xfe]));
  });

  it('refuses a ciphertext whose header names another key than the one that made it', async () => {
    const other = kms.createKey();
    const c = parseCiphertext(await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding: here }));
    const swapped = TEXT_PREFIX + encodeCiphertext({ ...c, keyId: other }).toString('base64url');
    await expectRefused(swapped, here, /IncorrectKeyException/);
  });

  it('maps KMS errors to the provider contract', async () => {
    const ciphertext = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding: here });
    const cases: [string, new (message: string) => Error][] = [
      ['AccessDeniedException', DecryptError],
      ['DisabledException', DecryptError],
      ['KMSInvalidStateException', DecryptError],
      ['UnrecognizedClientException', ProviderConfigError],
      ['ThrottlingException', ProviderError],
      ['KMSInternalException', ProviderError],
    ];
    for (const [name, kind] of cases) {
      kms.failures.push(kmsError(name, `${name} happened`));
      const err = await rejectionOf(decryptor.decrypt(ciphertext, here));
      expect(err, name).to.be.instanceOf(kind);
      expect(err.message).to.include(name);
      expect(err.message).to.include('secret key "password"');
    }
    expect(await decryptor.decrypt(ciphertext, here)).to.equal(SECRET);
  });

  describe('cache', () => {
    it('100 values under one data key cost one KMS Decrypt', async () => {
      const dataKey = await encryptor.generateDataKey(key, 'cluster', {});
      const ciphertexts = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          encryptor.encrypt(`value-${i}`, { keyId: key, scope: 'cluster', binding: {}, dataKey }),
        ),
      );
      dataKey.destroy();
      for (const [i, c] of ciphertexts.entries()) {
        const binding = { namespace: `ns-${i % 7}`, managedSecret: `ms-${i}`, secretKey: 'k' };
        expect(await decryptor.decrypt(c, binding)).to.equal(`value-${i}`);
      }
      expect(kms.count('Decrypt')).to.equal(1);
      expect(observed).to.deep.equal(['Decrypt']);
      expect(decryptor.cacheStats()).to.include({ size: 1, misses: 1, hits: 99 });
    });

    it('coalesces concurrent decrypts of the same ciphertext', async () => {
      kms.decryptDelayMs = 20;
      const ciphertext = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding: here });
      const values = await Promise.all(Array.from({ length: 10 }, () => decryptor.decrypt(ciphertext, here)));
      expect(values).to.deep.equal(Array(10).fill(SECRET));
      expect(kms.count('Decrypt')).to.equal(1);
      expect(decryptor.cacheStats()).to.include({ misses: 1, coalesced: 9 });
    });

    it('never serves a cached result to another binding', async () => {
      const ciphertext = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding: here });
      expect(await decryptor.decrypt(ciphertext, here)).to.equal(SECRET);
      await expectRefused(ciphertext, { ...here, secretKey: 'other' });
      expect(kms.count('Decrypt')).to.equal(2);
    });

    it('expires after the TTL and can be cleared', async () => {
      let now = 0;
      decryptor = new KmsDecryptor(kms, undefined, { ttlMs: 1000, now: () => now });
      const ciphertext = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding: here });
      await decryptor.decrypt(ciphertext, here);
      await decryptor.decrypt(ciphertext, here);
      expect(kms.count('Decrypt')).to.equal(1);
      now = 1000;
      await decryptor.decrypt(ciphertext, here);
      expect(kms.count('Decrypt')).to.equal(2);
      decryptor.clear();
      await decryptor.decrypt(ciphertext, here);
      expect(kms.count('Decrypt')).to.equal(3);
    });
  });
});

describe('aws-kms/KmsEncryptor', () => {
  let kms: FakeKms;
  let oldKey: string;
  let newKey: string;
  let encryptor: KmsEncryptor;
  let decryptor: KmsDecryptor;

  beforeEach(() => {
    kms = new FakeKms();
    oldKey = kms.createKey();
    newKey = kms.createKey('alias/new');
    encryptor = new KmsEncryptor(kms);
    decryptor = new KmsDecryptor(kms);
  });

  it('re-encrypts a direct ciphertext inside KMS, keeping scope and binding', async () => {
    const before = await encryptor.encrypt(SECRET, { keyId: oldKey, scope: 'strict', binding: here });
    const after = await encryptor.reencrypt(before, here, 'alias/new');
    const parsed = parseCiphertext(after);
    expect(parsed).to.include({ mode: 'direct', scope: 'strict', keyId: newKey });
    expect(kms.calls).to.deep.equal(['Encrypt', 'ReEncrypt']);
    expect(await decryptor.decrypt(after, here)).to.equal(SECRET);
    expect(await rejectionOf(decryptor.decrypt(after, { ...here, namespace: 'team-b' }))).to.be.instanceOf(
      DecryptError,
    );
  });

  it('re-wraps an envelope data key and keeps the AES payload byte for byte', async () => {
    const value = 'y'.repeat(5000);
    const before = parseCiphertext(
      await encryptor.encrypt(value, { keyId: oldKey, scope: 'namespace', binding: here }),
    );
    const afterText = await encryptor.reencrypt(
      TEXT_PREFIX + encodeCiphertext(before).toString('base64url'),
      { namespace: 'team-a' },
      newKey,
    );
    const after = parseCiphertext(afterText);
    if (before.mode !== 'envelope' || after.mode !== 'envelope') throw new Error('expected envelopes');
    expect(after.keyId).to.equal(newKey);
    expect(after.scope).to.equal('namespace');
    expect(after.blob.equals(before.blob)).to.equal(false);
    expect(after.iv.equals(before.iv) && after.tag.equals(before.tag) && after.payload.equals(before.payload)).to.equal(
      true,
    );
    expect(await decryptor.decrypt(afterText, { namespace: 'team-a', managedSecret: 'any', secretKey: 'k' })).to.equal(
      value,
    );
  });

  it('keeps values that shared a data key sharing one after re-encryption', async () => {
    const dataKey = await encryptor.generateDataKey(oldKey, 'cluster', {});
    const ciphertexts = await Promise.all(
      ['a', 'b', 'c'].map((v) => encryptor.encrypt(v, { keyId: oldKey, scope: 'cluster', binding: {}, dataKey })),
    );
    dataKey.destroy();
    kms.calls.length = 0;
    const rewrapped = [];
    for (const c of ciphertexts) rewrapped.push(await encryptor.reencrypt(c, {}, newKey));
    expect(kms.calls).to.deep.equal(['Decrypt', 'Encrypt']);
    expect(new Set(rewrapped.map((c) => parseCiphertext(c).blob.toString('hex'))).size).to.equal(1);
    for (const [i, c] of rewrapped.entries()) expect(await decryptor.decrypt(c, here)).to.equal(['a', 'b', 'c'][i]);
  });

  it('refuses to re-encrypt with the wrong binding, naming no value', async () => {
    for (const mode of ['direct', 'envelope'] as const) {
      const c = await encryptor.encrypt(SECRET, { keyId: oldKey, scope: 'strict', binding: here, mode });
      const err = await rejectionOf(encryptor.reencrypt(c, { ...here, secretKey: 'other' }, newKey));
      expect(err, err.message).to.be.instanceOf(DecryptError);
      expect(err.message).to.match(/KMS refused (Decrypt|ReEncrypt)/);
      expect(err.message).to.not.include(SECRET);
      expect((await rejectionOf(encryptor.reencrypt(c, { namespace: 'team-a' }, newKey))).message).to.match(/needs a/);
    }
  });

  it('refuses a tampered envelope instead of re-wrapping it', async () => {
    const c = parseCiphertext(
      await encryptor.encrypt('z'.repeat(4000), { keyId: oldKey, scope: 'cluster', binding: {} }),
    );
    if (c.mode !== 'envelope') throw new Error('expected an envelope');
    const payload = Buffer.from(c.payload);
    payload[0] = (payload[0] ?? 0) ^ 1;
    const tampered = TEXT_PREFIX + encodeCiphertext({ ...c, payload }).toString('base64url');
    expect(await rejectionOf(encryptor.reencrypt(tampered, {}, newKey))).to.be.instanceOf(DecryptError);
    expect(kms.count('Encrypt')).to.equal(0);
  });

  it('checks modes, sizes and data keys', async () => {
    expect(
      (
        await rejectionOf(
          encryptor.encrypt('x'.repeat(4097), { keyId: oldKey, scope: 'cluster', binding: {}, mode: 'direct' }),
        )
      ).message,
    ).to.match(/envelope/);
    expect(
      (await rejectionOf(encryptor.encrypt('', { keyId: oldKey, scope: 'cluster', binding: {}, mode: 'direct' })))
        .message,
    ).to.match(/envelope/);
    const dataKey = await encryptor.generateDataKey(oldKey, 'namespace', { namespace: 'team-a' });
    expect(
      (
        await rejectionOf(
          encryptor.encrypt('v', { keyId: oldKey, scope: 'namespace', binding: { namespace: 'team-b' }, dataKey }),
        )
      ).message,
    ).to.match(/another scope or binding/);
    dataKey.destroy();
    expect(() => dataKey.key).to.throw(/destroyed/);
    expect(
      (await rejectionOf(encryptor.encrypt('v', { keyId: oldKey, scope: 'strict', binding: {} }))).message,
    ).to.match(/needs a namespace/);
  });

  it('reports KMS failures with the operation and key, never the value', async () => {
    kms.failures.push(kmsError('ValidationException', `bad plaintext ${SECRET}`));
    const err = await rejectionOf(encryptor.encrypt(SECRET, { keyId: oldKey, scope: 'cluster', binding: {} }));
    expect(err.message).to.match(/KMS Encrypt with key .* failed: ValidationException/);
    expect(err.message).to.not.include(SECRET);
    const missing = await rejectionOf(encryptor.encrypt('v', { keyId: 'alias/none', scope: 'cluster', binding: {} }));
    expect(missing.message).to.match(/NotFoundException/);
  });
});
