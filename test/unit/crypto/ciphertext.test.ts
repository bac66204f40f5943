import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  DIRECT_MAX_BYTES,
  MAGIC,
  TEXT_PREFIX,
  decodeCiphertext,
  defaultMode,
  encodeCiphertext,
  encryptionContext,
  envelopeAad,
  formatCiphertext,
  isCiphertext,
  openEnvelope,
  parseCiphertext,
  sealEnvelope,
  type Ciphertext,
  type EnvelopeCiphertext,
} from '../../../src/crypto/ciphertext.js';
import { DecryptError } from '../../../src/providers/provider.js';

const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/0b7e8c5e-1111-4222-8333-444455556666';
const binding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };

function direct(): Ciphertext {
  return { mode: 'direct', scope: 'strict', keyId: KEY_ARN, blob: randomBytes(120) };
}

function envelope(payloadLength = 5000): EnvelopeCiphertext {
  return {
    mode: 'envelope',
    scope: 'namespace',
    keyId: KEY_ARN,
    blob: randomBytes(180),
    iv: randomBytes(12),
    tag: randomBytes(16),
    payload: randomBytes(payloadLength),
  };
}

function parseError(text: string): DecryptError {
  try {
    parseCiphertext(text);
  } catch (err) {
    expect(err).to.be.instanceOf(DecryptError);
    return err as DecryptError;
  }
  throw new Error('expected a DecryptError');
}

describe('crypto/ciphertext', () => {
  describe('format', () => {
    for (const [what, make] of [
      ['a direct', direct],
      ['an envelope', envelope],
      ['an empty envelope', () => envelope(0)],
    ] as const) {
      it(`round-trips ${what} ciphertext through text and bytes`, () => {
        const c = make();
        const text = formatCiphertext(c);
        expect(text.startsWith(TEXT_PREFIX)).to.equal(true);
        expect(text.slice(TEXT_PREFIX.length)).to.match(/^[A-Za-z0-9_-]+$/);
        expect(parseCiphertext(text)).to.deep.equal(c);
        expect(decodeCiphertext(encodeCiphertext(c))).to.deep.equal(c);
        // Surrounding whitespace (a YAML block scalar, a pasted line) is ignored.
        expect(parseCiphertext(`  ${text}\n`)).to.deep.equal(c);
      });
    }

    it('lays out the header as documented', () => {
      const bytes = encodeCiphertext(direct());
      expect(bytes.subarray(0, 4).equals(MAGIC)).to.equal(true);
      expect([...bytes.subarray(4, 7)]).to.deep.equal([1, 1, 1]);
      expect(bytes.readUInt16BE(7)).to.equal(KEY_ARN.length);
      expect(bytes.subarray(9, 9 + KEY_ARN.length).toString()).to.equal(KEY_ARN);
      expect(bytes.readUInt16BE(9 + KEY_ARN.length)).to.equal(120);
      expect(bytes.length).to.equal(11 + KEY_ARN.length + 120);
      const env = encodeCiphertext({ ...envelope(10), scope: 'cluster' });
      expect([...env.subarray(4, 7)]).to.deep.equal([1, 2, 3]);
      // The documented example prefix for a 75-character key ARN.
      expect(formatCiphertext(direct()).slice(0, 26)).to.equal('secretsync:v1:U1NZTgEBAQBL');
    });

    it('refuses what is not a secretsync ciphertext', () => {
      for (const text of ['', 'hunter2', 'secretsync:', 'secretsync:vx:AAAA', 'SECRETSYNC:v1:AAAA']) {
        expect(parseError(text).message).to.match(/not a secretsync ciphertext/);
      }
      const badMagic = Buffer.from(encodeCiphertext(direct()));
      badMagic[0] = 0x41;
      expect(parseError(TEXT_PREFIX + badMagic.toString('base64url')).message).to.match(/not a secretsync ciphertext/);
    });

    it('refuses other versions by name', () => {
      expect(parseError('secretsync:v2:AAAA').message).to.match(/unsupported version v2/);
      const v2 = Buffer.from(encodeCiphertext(direct()));
      v2[4] = 2;
      expect(parseError(TEXT_PREFIX + v2.toString('base64url')).message).to.match(/unsupported version 2/);
    });

    it('refuses malformed bodies without quoting them', () => {
      const good = formatCiphertext(direct());
      const bytes = encodeCiphertext(direct());
      const cases: [string, RegExp][] = [
        [`${good}=`, /base64url/],
        [`${good.slice(0, -1)}+`, /base64url/],
        [good.slice(0, -1), /base64url|truncated|unexpected/],
        [TEXT_PREFIX + Buffer.concat([bytes, Buffer.from([0])]).toString('base64url'), /unexpected bytes/],
        [TEXT_PREFIX + bytes.subarray(0, 20).toString('base64url'), /truncated/],
        [TEXT_PREFIX + Buffer.from([...MAGIC, 1, 9, 1]).toString('base64url'), /unknown mode/],
        [TEXT_PREFIX + Buffer.from([...MAGIC, 1, 1, 9]).toString('base64url'), /unknown scope/],
        [TEXT_PREFIX + Buffer.from([...MAGIC, 1, 1, 1, 0, 0]).toString('base64url'), /bad key id length/],
        [TEXT_PREFIX + encodeCiphertext(envelope(0)).subarray(0, -1).toString('base64url'), /truncated envelope/],
      ];
      for (const [text, message] of cases) {
        const err = parseError(text);
        expect(err.message, text).to.match(message);
        expect(err.message).to.not.include(text.slice(TEXT_PREFIX.length, TEXT_PREFIX.length + 12));
      }
    });

    it('refuses a non-canonical encoding of the same bytes', () => {
      // The last character of a 1-byte remainder carries 4 unused bits; setting them is another text for the same bytes.
      const c = direct();
      let text = formatCiphertext(c);
      while ((text.length - TEXT_PREFIX.length) % 4 !== 2) {
        c.blob = randomBytes(c.blob.length + 1);
        text = formatCiphertext(c);
      }
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const last = alphabet.indexOf(text.at(-1) ?? 'A');
      const twin = text.slice(0, -1) + alphabet[last + 1];
      expect(parseError(twin).message).to.match(/not canonical/);
    });

    it('refuses a key id it would not write', () => {
      expect(() => encodeCiphertext({ ...direct(), keyId: '' })).to.throw(/key id/);
      expect(() => encodeCiphertext({ ...direct(), keyId: 'key with spaces' })).to.throw(/key id/);
      expect(() => encodeCiphertext({ ...direct(), blob: Buffer.alloc(0) })).to.throw(/blob/);
    });

    it('recognises ciphertexts of any version', () => {
      expect(isCiphertext(formatCiphertext(direct()))).to.equal(true);
      expect(isCiphertext(`\n${formatCiphertext(direct())}\n`)).to.equal(true);
      expect(isCiphertext('secretsync:v2:AAAA')).to.equal(true);
      expect(isCiphertext('secretsync:nope')).to.equal(false);
      expect(isCiphertext('hunter2')).to.equal(false);
      expect(isCiphertext('{"secretsync:v1:":1}')).to.equal(false);
    });

    it('uses direct mode for 1 to 3072 bytes and an envelope otherwise', () => {
      expect(defaultMode(0)).to.equal('envelope');
      expect(defaultMode(1)).to.equal('direct');
      expect(defaultMode(DIRECT_MAX_BYTES)).to.equal('direct');
      expect(defaultMode(DIRECT_MAX_BYTES + 1)).to.equal('envelope');
    });
  });

  describe('encryption context', () => {
    it('binds strict ciphertexts to namespace, ManagedSecret and secret key', () => {
      expect(encryptionContext('strict', binding)).to.deep.equal({
        'secretsync.io/scope': 'strict',
        'secretsync.io/namespace': 'team-a',
        'secretsync.io/managed-secret': 'db',
        'secretsync.io/secret-key': 'password',
      });
    });

    it('binds namespace ciphertexts to the namespace only', () => {
      expect(encryptionContext('namespace', binding)).to.deep.equal({
        'secretsync.io/scope': 'namespace',
        'secretsync.io/namespace': 'team-a',
      });
      expect(encryptionContext('namespace', { namespace: 'team-a' })).to.deep.equal(
        encryptionContext('namespace', binding),
      );
    });

    it('binds cluster ciphertexts to the scope only', () => {
      expect(encryptionContext('cluster', binding)).to.deep.equal({ 'secretsync.io/scope': 'cluster' });
      expect(encryptionContext('cluster', {})).to.deep.equal({ 'secretsync.io/scope': 'cluster' });
    });

    it('refuses a binding that lacks what the scope needs', () => {
      expect(() => encryptionContext('strict', { namespace: 'team-a', managedSecret: 'db' })).to.throw(
        DecryptError,
        /scope strict needs a secret key/,
      );
      expect(() => encryptionContext('namespace', { namespace: '' })).to.throw(DecryptError, /needs a namespace/);
    });
  });

  describe('envelope', () => {
    const key = randomBytes(32);
    const context = encryptionContext('strict', binding);

    function sealed(value = 'a long value'): EnvelopeCiphertext {
      return {
        mode: 'envelope',
        scope: 'strict',
        keyId: KEY_ARN,
        blob: randomBytes(100),
        ...sealEnvelope(key, Buffer.from(value), 'strict', context),
      };
    }

    it('opens with the same key, header and context', () => {
      expect(openEnvelope(key, sealed(), context).toString()).to.equal('a long value');
      // Re-parsing keeps it openable (the key id and blob are not part of the AAD).
      const reparsed = parseCiphertext(formatCiphertext({ ...sealed(), keyId: 'alias/other' }));
      expect(reparsed.mode).to.equal('envelope');
    });

    it('authenticates the scope and the context as AAD', () => {
      const c = sealed();
      expect(() => openEnvelope(key, c, encryptionContext('strict', { ...binding, secretKey: 'other' }))).to.throw(
        DecryptError,
        /modified, or is used somewhere other/,
      );
      expect(() => openEnvelope(key, { ...c, scope: 'cluster' }, context)).to.throw(DecryptError);
      expect(
        envelopeAad('strict', context)
          .subarray(0, 7)
          .equals(Buffer.from([...MAGIC, 1, 2, 1])),
      ).to.equal(true);
    });

    it('refuses a wrong key, a modified payload, IV or tag, without detail', () => {
      const c = sealed();
      const flip = (b: Buffer) => {
        const copy = Buffer.from(b);
        copy[0] = (copy[0] ?? 0) ^ 1;
        return copy;
      };
      for (const bad of [
        { ...c, payload: flip(c.payload) },
        { ...c, iv: flip(c.iv) },
        { ...c, tag: flip(c.tag) },
      ]) {
        expect(() => openEnvelope(key, bad, context)).to.throw(DecryptError);
      }
      expect(() => openEnvelope(randomBytes(32), c, context)).to.throw(DecryptError);
      expect(() => openEnvelope(randomBytes(16), c, context)).to.throw(DecryptError, /32-byte/);
    });
  });
});
