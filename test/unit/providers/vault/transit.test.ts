import { expect } from 'chai';
import { formatCiphertext } from '../../../../src/crypto/ciphertext.js';
import { parseTransitCiphertext } from '../../../../src/crypto/transit-ciphertext.js';
import { DecryptError, ProviderConfigError, type CiphertextBinding } from '../../../../src/providers/provider.js';
import {
  VaultFailure,
  VaultNotFoundError,
  VaultPermissionError,
  VaultRequestError,
  VaultSealedError,
} from '../../../../src/providers/vault/errors.js';
import { TransitDecryptor, TransitKey, httpFailureOf } from '../../../../src/providers/vault/transit.js';
import { FakeTransit, fakeFailureOf } from './fake-transit.js';

const SECRET = 'transit-s3cret-value';
const here: CiphertextBinding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('providers/vault/transit', () => {
  let vault: FakeTransit;
  let key: TransitKey;
  let decryptor: TransitDecryptor;

  beforeEach(() => {
    vault = new FakeTransit();
    vault.createKey('transit', 'secretsync');
    key = new TransitKey(vault, { key: 'secretsync' }, fakeFailureOf);
    decryptor = new TransitDecryptor(key);
  });

  it('encrypts into the secretsync transit form and decrypts it where it is bound', async () => {
    const text = await key.encrypt(Buffer.from(SECRET), 'strict', here);
    expect(text).to.match(/^secretsync:v1:transit:strict:secretsync:vault:v1:[A-Za-z0-9+/]+=*$/);
    expect(text).to.not.include(SECRET);
    expect(await decryptor.decrypt(text, here)).to.equal(SECRET);
  });

  for (const [scope, elsewhere, fails] of [
    ['strict', { ...here, namespace: 'team-b' }, true],
    ['strict', { ...here, managedSecret: 'other' }, true],
    ['strict', { ...here, secretKey: 'user' }, true],
    ['namespace', { ...here, managedSecret: 'other', secretKey: 'x' }, false],
    ['namespace', { ...here, namespace: 'team-b' }, true],
    ['cluster', { namespace: 'team-z', managedSecret: 'y', secretKey: 'z' }, false],
  ] as const) {
    it(`scope ${scope}: used at ${elsewhere.namespace}/${elsewhere.managedSecret}[${elsewhere.secretKey}] ${fails ? 'fails' : 'decrypts'}`, async () => {
      const text = await key.encrypt(Buffer.from(SECRET), scope, here);
      if (!fails) {
        expect(await decryptor.decrypt(text, elsewhere)).to.equal(SECRET);
        return;
      }
      const err = await rejection(decryptor.decrypt(text, elsewhere));
      expect(err).to.be.instanceOf(DecryptError);
      expect(err.message).to.include(`secret key "${elsewhere.secretKey}"`).and.include(`scope ${scope}`);
      expect(err.message).to.not.include(SECRET).and.not.include(text.slice(40));
    });
  }

  it('refuses a scope edited in the header (the context changes with it)', async () => {
    const text = await key.encrypt(Buffer.from(SECRET), 'strict', here);
    const err = await rejection(decryptor.decrypt(text.replace(':strict:', ':cluster:'), here));
    expect(err).to.be.instanceOf(DecryptError);
  });

  it('refuses a modified Vault ciphertext as DecryptError', async () => {
    const text = await key.encrypt(Buffer.from(SECRET), 'strict', here);
    const c = parseTransitCiphertext(text);
    const body = Buffer.from(c.vault.slice('vault:v1:'.length), 'base64');
    body[14] = (body[14] as number) ^ 1;
    const err = await rejection(decryptor.decrypt(text.replace(c.vault, `vault:v1:${body.toString('base64')}`), here));
    expect(err).to.be.instanceOf(DecryptError);
    expect(err.message).to.include('Vault refused to decrypt it');
  });

  it('refuses a ciphertext naming another transit key without asking Vault to decrypt', async () => {
    vault.createKey('transit', 'other');
    const other = new TransitKey(vault, { key: 'other' }, fakeFailureOf);
    const text = await other.encrypt(Buffer.from(SECRET), 'strict', here);
    const err = await rejection(decryptor.decrypt(text, here));
    expect(err).to.be.instanceOf(DecryptError);
    expect(err.message).to.include('made with transit key "other"').and.include('"secretsync"');
    expect(vault.count('decrypt')).to.equal(0);
  });

  it('names a KMS ciphertext instead of calling it malformed', async () => {
    const kms = formatCiphertext({ mode: 'direct', scope: 'strict', keyId: 'arn:k', blob: Buffer.from('blob') });
    const err = await rejection(decryptor.decrypt(kms, here));
    expect(err).to.be.instanceOf(DecryptError);
    expect(err.message).to.include('a KMS ciphertext').and.include('decrypt.kms');
  });

  it('refuses a key without derivation (it would ignore the context) before any decrypt or encrypt', async () => {
    vault.createKey('transit', 'plain', false);
    const plain = new TransitKey(vault, { key: 'plain' }, fakeFailureOf);
    const err = await rejection(plain.encrypt(Buffer.from(SECRET), 'strict', here));
    expect(err).to.be.instanceOf(ProviderConfigError);
    expect((err as ProviderConfigError).reason).to.equal('TransitKeyNotDerived');
    expect(err.message).to.include('derived=true');
    const text = `secretsync:v1:transit:strict:plain:vault:v1:${Buffer.alloc(40, 7).toString('base64')}`;
    const err2 = await rejection(new TransitDecryptor(plain).decrypt(text, here));
    expect((err2 as ProviderConfigError).reason).to.equal('TransitKeyNotDerived');
    expect(vault.count('encrypt') + vault.count('decrypt')).to.equal(0);
  });

  it('reads the key once after it was seen derived, and again after a failed check', async () => {
    const missing = new TransitKey(vault, { key: 'later' }, fakeFailureOf);
    const err = await rejection(missing.requireDerived());
    expect((err as ProviderConfigError).reason).to.equal('TransitKeyNotFound');
    vault.createKey('transit', 'later');
    await missing.requireDerived();
    await missing.requireDerived();
    expect(vault.calls.filter((c) => c === 'read transit/keys/later')).to.have.length(2);
  });

  it('caches decrypts per binding and coalesces identical concurrent ones', async () => {
    const text = await key.encrypt(Buffer.from(SECRET), 'namespace', here);
    vault.delayMs = 20;
    const values = await Promise.all([1, 2, 3].map(() => decryptor.decrypt(text, here)));
    expect(values).to.deep.equal([SECRET, SECRET, SECRET]);
    expect(await decryptor.decrypt(text, { ...here, managedSecret: 'another' })).to.equal(SECRET);
    // Scope namespace: another ManagedSecret of the namespace has the same context, so the same cache entry.
    expect(vault.count('decrypt')).to.equal(1);
    expect(decryptor.cacheStats()).to.include({ misses: 1, coalesced: 2, hits: 1 });
  });

  it('rewraps to the newest key version, keeping scope and binding', async () => {
    const text = await key.encrypt(Buffer.from(SECRET), 'strict', here);
    vault.rotate('transit', 'secretsync');
    const rewrapped = await key.rewrap(text, here);
    expect(parseTransitCiphertext(rewrapped)).to.include({ scope: 'strict', key: 'secretsync', keyVersion: 2 });
    vault.setMinDecryptionVersion('transit', 'secretsync', 2);
    expect(await decryptor.decrypt(rewrapped, here)).to.equal(SECRET);
    const err = await rejection(decryptor.decrypt(text, here));
    expect(err).to.be.instanceOf(DecryptError);
    expect(err.message).to.include('min_decryption_version');
  });

  it('refuses a mount or key name that would walk to another path', () => {
    for (const spec of [
      { key: '../sys' },
      { key: 'a/b' },
      { key: '' },
      { key: 'k', mount: '../sys' },
      { key: 'k', mount: 'a//b' },
    ]) {
      expect(() => new TransitKey(vault, spec, fakeFailureOf), JSON.stringify(spec)).to.throw(ProviderConfigError);
    }
    expect(new TransitKey(vault, { key: 'k.v-1_2', mount: '/team-a/transit/' }, fakeFailureOf).mount).to.equal(
      'team-a/transit',
    );
  });

  it('stops waiting when the caller aborts, and never caches a failure', async () => {
    const text = await key.encrypt(Buffer.from(SECRET), 'strict', here);
    vault.delayMs = 50;
    const controller = new AbortController();
    const pending = decryptor.decrypt(text, here, { signal: controller.signal });
    controller.abort();
    const err = await rejection(pending);
    expect(err.name).to.equal('DeadlineError');
    vault.delayMs = 0;
    expect(await decryptor.decrypt(text, here)).to.equal(SECRET);
  });

  it("reads status and Vault's error strings from the store client's errors, and nothing from others", () => {
    const failure = new VaultFailure('HTTP 400', 400, false);
    const refused = new VaultRequestError('refused', 400, ['cipher: message authentication failed'], failure);
    expect(httpFailureOf(refused)).to.deep.equal({ status: 400, errors: ['cipher: message authentication failed'] });
    expect(httpFailureOf(new VaultNotFoundError('nf', 'k', undefined))?.status).to.equal(404);
    expect(httpFailureOf(new VaultPermissionError('denied'))?.status).to.equal(403);
    expect(httpFailureOf(new VaultSealedError('sealed'))).to.equal(undefined);
    expect(httpFailureOf(new Error('x'))).to.equal(undefined);
  });

  it('passes a sealed Vault through with its own reason, not as DecryptFailed', async () => {
    const text = await key.encrypt(Buffer.from(SECRET), 'strict', here);
    const sealed = new TransitDecryptor(
      new TransitKey(
        {
          read: (path) => vault.read(path),
          write: () =>
            Promise.reject(new VaultSealedError('Vault POST v1/transit/decrypt/secretsync: Vault is sealed')),
        },
        { key: 'secretsync' },
        httpFailureOf,
      ),
    );
    const err = await rejection(sealed.decrypt(text, here));
    expect(err).to.be.instanceOf(VaultSealedError);
    expect((err as VaultSealedError).reason).to.equal('VaultSealed');
  });

  describe('batching', () => {
    const bindingOf = (i: number): CiphertextBinding => ({
      namespace: 'team-a',
      managedSecret: `m-${i}`,
      secretKey: 'k',
    });

    it('sends distinct decrypts asked for together in one request, each answered with its own value', async () => {
      const texts = await Promise.all(
        Array.from({ length: 30 }, (_, i) => key.encrypt(Buffer.from(`value-${i}`), 'strict', bindingOf(i))),
      );
      const values = await Promise.all(texts.map((t, i) => decryptor.decrypt(t, bindingOf(i))));
      expect(values).to.deep.equal(texts.map((_, i) => `value-${i}`));
      expect(vault.count('decrypt')).to.equal(1);
      expect(vault.batchSizes).to.deep.equal([30]);
      expect(decryptor.batchStats()).to.deep.equal({ requests: 1, items: 30 });
    });

    it('fails only the refused items of a batch, and every item when all are refused', async () => {
      const texts = await Promise.all([0, 1, 2].map((i) => key.encrypt(Buffer.from(SECRET), 'strict', bindingOf(i))));
      const settled = await Promise.allSettled([
        decryptor.decrypt(texts[0] ?? '', bindingOf(0)),
        decryptor.decrypt(texts[1] ?? '', { ...bindingOf(1), namespace: 'team-b' }),
        decryptor.decrypt(texts[2] ?? '', bindingOf(2)),
      ]);
      expect(settled.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
      const refused = (settled[1] as PromiseRejectedResult).reason as Error;
      expect(refused).to.be.instanceOf(DecryptError);
      expect(refused.message).to.include('team-b').and.include('scope strict').and.not.include(SECRET);
      expect(vault.batchSizes).to.deep.equal([3]);

      const all = await Promise.allSettled(
        [0, 1].map((i) => decryptor.decrypt(texts[i] ?? '', { ...bindingOf(i), secretKey: 'other' })),
      );
      expect(all.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
      for (const r of all) expect((r as PromiseRejectedResult).reason).to.be.instanceOf(DecryptError);
    });

    it('caps a batch at maxBatch items (1: one request each)', async () => {
      const single = new TransitDecryptor(key, { maxBatch: 1 });
      const texts = await Promise.all([0, 1, 2].map((i) => key.encrypt(Buffer.from(SECRET), 'strict', bindingOf(i))));
      await Promise.all(texts.map((t, i) => single.decrypt(t, bindingOf(i))));
      expect(vault.count('decrypt')).to.equal(3);
      expect(vault.batchSizes).to.deep.equal([]);
    });

    it('keeps one batch request in flight; what waits goes in the next batch', async () => {
      const small = new TransitDecryptor(key, { maxBatch: 2 });
      const texts = await Promise.all(
        Array.from({ length: 20 }, (_, i) => key.encrypt(Buffer.from(`v${i}`), 'strict', bindingOf(i))),
      );
      vault.delayMs = 20;
      vault.maxConcurrent = 0;
      const values = await Promise.all(texts.map((t, i) => small.decrypt(t, bindingOf(i))));
      expect(values).to.deep.equal(texts.map((_, i) => `v${i}`));
      expect(vault.batchSizes.every((n) => n <= 2)).to.equal(true);
      expect(small.batchStats()).to.deep.equal({ requests: 10, items: 20 });
      expect(vault.maxConcurrent).to.equal(1);
    });
  });
});
