import { expect } from 'chai';
import { createHmac, randomBytes } from 'node:crypto';
import {
  AuthenticationError,
  IV_LENGTH,
  MASTER_KEY_ERROR,
  TAG_LENGTH,
  masterKeyId,
  open,
  parseMasterKey,
  seal,
} from '../../../src/crypto/aead.js';

describe('crypto/aead', () => {
  const key = randomBytes(32);
  const aad = Buffer.from('entry\0db/prod\0' + '1');

  it('round-trips with a fresh 12-byte IV and a 16-byte tag', () => {
    const plaintext = Buffer.from('hunter2');
    const a = seal(key, plaintext, aad);
    const b = seal(key, plaintext, aad);
    expect(a.iv).to.have.length(IV_LENGTH);
    expect(a.tag).to.have.length(TAG_LENGTH);
    expect(a.iv.equals(b.iv)).to.equal(false);
    expect(a.ciphertext.includes(plaintext)).to.equal(false);
    expect(open(key, a, aad).toString()).to.equal('hunter2');
  });

  for (const [what, mutate] of [
    ['a modified ciphertext', (s: ReturnType<typeof seal>) => ({ ...s, ciphertext: flip(s.ciphertext) })],
    ['a modified tag', (s: ReturnType<typeof seal>) => ({ ...s, tag: flip(s.tag) })],
    ['a modified iv', (s: ReturnType<typeof seal>) => ({ ...s, iv: flip(s.iv) })],
    ['a truncated tag', (s: ReturnType<typeof seal>) => ({ ...s, tag: s.tag.subarray(0, 12) })],
  ] as const) {
    it(`refuses ${what}`, () => {
      const sealed = seal(key, Buffer.from('hunter2'), aad);
      expect(() => open(key, mutate(sealed), aad)).to.throw(AuthenticationError);
    });
  }

  it('refuses other associated data and another key, with a message that holds no input', () => {
    const sealed = seal(key, Buffer.from('hunter2'), aad);
    let caught: unknown;
    try {
      open(randomBytes(32), sealed, aad);
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(AuthenticationError);
    const message = (caught as Error).message;
    expect(message).to.match(/decryption failed/);
    expect(message).to.not.include('hunter2');
    expect(message).to.not.include(key.toString('hex'));
    expect(message).to.not.include(key.toString('base64'));
    expect(() => open(key, sealed, Buffer.from('entry\0db/prod\0' + '2'))).to.throw(AuthenticationError);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => seal(randomBytes(16), Buffer.from('x'), aad)).to.throw(/32 bytes/);
  });

  describe('parseMasterKey', () => {
    const raw = randomBytes(32);

    it('accepts raw bytes, base64, base64url and hex, ignoring surrounding whitespace in text', () => {
      expect(parseMasterKey(raw).equals(raw)).to.equal(true);
      expect(parseMasterKey(`${raw.toString('base64')}\n`).equals(raw)).to.equal(true);
      expect(parseMasterKey(Buffer.from(`  ${raw.toString('base64url')}  `)).equals(raw)).to.equal(true);
      expect(parseMasterKey(`${raw.toString('hex')}\r\n`).equals(raw)).to.equal(true);
      expect(parseMasterKey(raw.toString('hex').toUpperCase()).equals(raw)).to.equal(true);
    });

    it('takes exactly 32 bytes as raw even when they start or end with whitespace bytes', () => {
      const spacey = Buffer.concat([Buffer.from(' \n'), randomBytes(28), Buffer.from('\t ')]);
      expect(parseMasterKey(spacey).equals(spacey)).to.equal(true);
    });

    it('returns a copy, so the caller may wipe its input', () => {
      const input = Buffer.from(raw);
      const parsed = parseMasterKey(input);
      input.fill(0);
      expect(parsed.equals(raw)).to.equal(true);
    });

    for (const [what, input] of [
      ['empty input', ''],
      ['16 raw bytes', randomBytes(16)],
      ['33 raw bytes', randomBytes(33)],
      ['base64 of 16 bytes', randomBytes(16).toString('base64')],
      ['hex of 31 bytes', randomBytes(31).toString('hex')],
      ['a passphrase', 'correct horse battery staple'],
    ] as const) {
      it(`refuses ${what} with the one clear message`, () => {
        expect(() => parseMasterKey(input)).to.throw(MASTER_KEY_ERROR);
      });
    }
  });

  it('masterKeyId is 16 hex characters of HMAC-SHA256(key, label), stable per key', () => {
    const id = masterKeyId(key);
    expect(id).to.match(/^[0-9a-f]{16}$/);
    expect(masterKeyId(Buffer.from(key))).to.equal(id);
    expect(masterKeyId(randomBytes(32))).to.not.equal(id);
    const expected = createHmac('sha256', key).update('secretsync-master-key-id').digest('hex').slice(0, 16);
    expect(id).to.equal(expected);
  });
});

function flip(b: Buffer): Buffer {
  const copy = Buffer.from(b);
  copy[0] = (copy[0] ?? 0) ^ 0x01;
  return copy;
}
