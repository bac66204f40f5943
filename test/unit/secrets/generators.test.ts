import { expect } from 'chai';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import {
  GeneratorError,
  PASSWORD_ALPHABETS,
  generate,
  generatePassword,
  generateRandomBytes,
  validateGenerator,
} from '../../../src/secrets/generators.js';

describe('rotation generators (src/secrets/generators.ts)', () => {
  describe('password', () => {
    it('defaults to 32 characters from all four classes', () => {
      const pw = generatePassword();
      expect(pw).to.have.length(32);
      const all = Object.values(PASSWORD_ALPHABETS).join('');
      for (const c of pw) expect(all).to.contain(c);
    });

    it('honours length, classes, minimums per class and exclusions on every run', () => {
      const exclude = '0O1lIo';
      for (let i = 0; i < 300; i++) {
        const pw = generatePassword({
          length: 12,
          classes: ['lowercase', 'digits', 'symbols'],
          minimum: { digits: 4, symbols: 3 },
          exclude,
        });
        expect(pw).to.have.length(12);
        const count = (alphabet: string) => [...pw].filter((c) => alphabet.includes(c)).length;
        expect(count(PASSWORD_ALPHABETS.digits)).to.be.at.least(4);
        expect(count(PASSWORD_ALPHABETS.symbols)).to.be.at.least(3);
        expect(count(PASSWORD_ALPHABETS.uppercase)).to.equal(0);
        for (const c of exclude) expect(pw).to.not.contain(c);
      }
    });

    it('places the required characters anywhere, not only at the start', () => {
      const firstIsDigit = Array.from({ length: 400 }, () =>
        generatePassword({ length: 10, classes: ['lowercase', 'digits'], minimum: { digits: 1 } }),
      ).filter((pw) => PASSWORD_ALPHABETS.digits.includes(pw[0] as string)).length;
      // With a shuffle roughly 1 in 10 to 1 in 4 start with a digit; without one, all would.
      expect(firstIsDigit).to.be.lessThan(300);
    });

    it('never repeats a value over many runs', () => {
      const seen = new Set(Array.from({ length: 5000 }, () => generatePassword({ length: 16 })));
      expect(seen.size).to.equal(5000);
    });

    it('refuses parameters that cannot make a password', () => {
      expect(() => generatePassword({ length: 4, minimum: { digits: 3, symbols: 2 } })).to.throw(
        GeneratorError,
        /add up to 5, more than length 4/,
      );
      expect(() => generatePassword({ classes: ['digits'], exclude: '0123456789' })).to.throw(
        GeneratorError,
        /every digits character/,
      );
      expect(() => generatePassword({ classes: ['digits'], minimum: { symbols: 1 } })).to.throw(
        GeneratorError,
        /not among classes/,
      );
    });
  });

  it('randomBytes: base64 by default, hex on request, the right number of bytes, no repeats', () => {
    expect(Buffer.from(generateRandomBytes(), 'base64')).to.have.length(32);
    const hex = generateRandomBytes({ length: 16, encoding: 'hex' });
    expect(hex).to.match(/^[0-9a-f]{32}$/);
    const seen = new Set(Array.from({ length: 2000 }, () => generateRandomBytes({ length: 16 })));
    expect(seen.size).to.equal(2000);
  });

  it('uuid: a version 4 UUID, different each time', () => {
    const a = generate({ uuid: {} });
    const b = generate({ uuid: {} });
    if (a.kind !== 'value' || b.kind !== 'value') throw new Error('expected a value');
    expect(a.value).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.value).to.not.equal(b.value);
  });

  for (const [name, spec, keyType, detail] of [
    ['rsa 2048', { rsa: { bits: 2048 } }, 'rsa', { modulusLength: 2048 }],
    ['ecdsa P-384', { ecdsa: { curve: 'P-384' } }, 'ec', { namedCurve: 'secp384r1' }],
    ['ecdsa default P-256', { ecdsa: {} }, 'ec', { namedCurve: 'prime256v1' }],
    ['ed25519', { ed25519: {} }, 'ed25519', {}],
  ] as const) {
    it(`${name}: PEM privateKey and publicKey that parse with node:crypto and belong together`, () => {
      const out = generate(spec);
      if (out.kind !== 'properties') throw new Error('expected properties');
      expect(Object.keys(out.properties).sort()).to.deep.equal(['privateKey', 'publicKey']);
      expect(out.properties.privateKey).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(out.properties.publicKey).to.match(/^-----BEGIN PUBLIC KEY-----\n/);
      const priv = createPrivateKey(out.properties.privateKey as string);
      const pub = createPublicKey(out.properties.publicKey as string);
      expect(priv.asymmetricKeyType).to.equal(keyType);
      expect(pub.asymmetricKeyDetails).to.include(detail);
      const data = Buffer.from('rotation');
      const algorithm = keyType === 'ed25519' ? null : 'sha256';
      expect(verify(algorithm, data, pub, sign(algorithm, data, priv))).to.equal(true);
      const again = generate(spec);
      if (again.kind !== 'properties') throw new Error('expected properties');
      expect(again.properties.privateKey).to.not.equal(out.properties.privateKey);
    });
  }

  it('validateGenerator refuses zero or several generators and bad parameters', () => {
    expect(() => validateGenerator({})).to.throw(GeneratorError, /exactly one/);
    expect(() => validateGenerator({ uuid: {}, ed25519: {} })).to.throw(GeneratorError, /exactly one/);
    expect(() => validateGenerator({ rsa: { bits: 1024 as 2048 } })).to.throw(GeneratorError, /2048, 3072 or 4096/);
    expect(() => validateGenerator({ password: { length: 8, minimum: { digits: 9 } } })).to.throw(GeneratorError);
    expect(() => validateGenerator({ password: { length: 20 } })).to.not.throw();
  });
});
