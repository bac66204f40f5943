// Fuzzing the ciphertext format (src/crypto/ciphertext.ts) and the parsing
// parts of src/crypto/aead.ts. A ciphertext comes from a ManagedSecret spec or a
// Git repository, written by anyone: whatever the bytes, the parsers throw only
// DecryptError (AuthenticationError for open, the master-key error for key
// parsing) with a bounded message that quotes nothing of the input, and a text
// or byte string that parses is the one canonical encoding of what it parsed to.
import { expect } from 'chai';
import fc from 'fast-check';
import {
  AuthenticationError,
  IV_LENGTH,
  MASTER_KEY_ERROR,
  TAG_LENGTH,
  open,
  parseMasterKey,
  seal,
} from '../../../src/crypto/aead.js';
import {
  CIPHERTEXT_PREFIX,
  MAGIC,
  MAX_BLOB_LENGTH,
  TEXT_PREFIX,
  decodeCiphertext,
  encodeCiphertext,
  encryptionContext,
  formatCiphertext,
  isCiphertext,
  openEnvelope,
  parseCiphertext,
  sealEnvelope,
  type Ciphertext,
  type EnvelopeCiphertext,
} from '../../../src/crypto/ciphertext.js';
import type { CiphertextScope } from '../../../src/api/types.js';
import { DecryptError } from '../../../src/providers/provider.js';
import { assertTypedError, mutate, mutation, runs, thrownBy, timeoutFor } from './fuzz.js';

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const scope = fc.constantFrom<CiphertextScope>('strict', 'namespace', 'cluster');
const keyId = fc.stringMatching(/^[A-Za-z0-9:/_+=,.@-]{1,80}$/);

/** Any ciphertext the encoder accepts. */
const ciphertext: fc.Arbitrary<Ciphertext> = fc.oneof(
  fc.record({
    mode: fc.constant('direct' as const),
    scope,
    keyId,
    blob: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a)),
  }),
  fc.record({
    mode: fc.constant('envelope' as const),
    scope,
    keyId,
    blob: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a)),
    iv: fc.uint8Array({ minLength: IV_LENGTH, maxLength: IV_LENGTH }).map((a) => Buffer.from(a)),
    tag: fc.uint8Array({ minLength: TAG_LENGTH, maxLength: TAG_LENGTH }).map((a) => Buffer.from(a)),
    payload: bytes(300),
  }),
);

const DECRYPT = [DecryptError] as const;

describe('fuzz: ciphertext format', function () {
  this.timeout(timeoutFor(20_000));

  it('round-trips every ciphertext through the text and the binary form', () => {
    fc.assert(
      fc.property(ciphertext, (c) => {
        expect(decodeCiphertext(encodeCiphertext(c))).to.deep.equal(c);
        const text = formatCiphertext(c);
        expect(isCiphertext(text)).to.equal(true);
        expect(parseCiphertext(text)).to.deep.equal(c);
      }),
      runs(1, 300),
    );
  });

  it('decodes arbitrary bytes to a DecryptError, or to the one ciphertext that encodes to exactly them', () => {
    const headed = fc
      .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 4 }), bytes(400))
      .map(([mode, sc, rest]) => Buffer.concat([MAGIC, Buffer.of(1, mode, sc), rest]));
    fc.assert(
      fc.property(fc.oneof(bytes(64), headed), (input) => {
        const err = thrownBy(() => {
          const c = decodeCiphertext(input);
          expect(encodeCiphertext(c).equals(input), 'a decoded ciphertext is its canonical encoding').to.equal(true);
        });
        if (err !== undefined) assertTypedError(err, DECRYPT);
      }),
      runs(2, 1_000),
    );
  });

  it('refuses or canonically decodes every mutation of a valid ciphertext, never reading past it', () => {
    fc.assert(
      fc.property(ciphertext, fc.array(mutation, { minLength: 1, maxLength: 3 }), (c, ms) => {
        const mutated = ms.reduce(mutate, encodeCiphertext(c));
        const err = thrownBy(() => {
          const decoded = decodeCiphertext(mutated);
          // Whatever a mutation turned it into, that is exactly what the bytes say.
          expect(encodeCiphertext(decoded).equals(mutated)).to.equal(true);
          if (decoded.mode === 'direct') expect(decoded.blob.length).to.be.at.most(MAX_BLOB_LENGTH);
        });
        if (err !== undefined) assertTypedError(err, DECRYPT);
      }),
      runs(3, 1_000),
    );
  });

  it('parses arbitrary text to a DecryptError that quotes none of it, or to the ciphertext whose text it is', () => {
    const base64urlBody = fc
      .array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ .'), {
        maxLength: 200,
      })
      .map((a) => a.join(''));
    const prefixed = fc
      .tuple(
        fc.constantFrom(TEXT_PREFIX, CIPHERTEXT_PREFIX, `${CIPHERTEXT_PREFIX}v2:`, `${CIPHERTEXT_PREFIX}v0001:`),
        base64urlBody,
      )
      .map(([p, b]) => p + b);
    const validThenEdited = fc.tuple(ciphertext, fc.string({ maxLength: 3 }), fc.nat()).map(([c, s, at]) => {
      const text = formatCiphertext(c);
      const i = at % (text.length + 1);
      return text.slice(0, i) + s + text.slice(i + 1);
    });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 100, unit: 'grapheme' }), prefixed, validThenEdited), (text) => {
        const secret = text.trim().slice(TEXT_PREFIX.length);
        const err = thrownBy(() => {
          const c = parseCiphertext(text);
          expect(formatCiphertext(c)).to.equal(text.trim());
        });
        if (err !== undefined) assertTypedError(err, DECRYPT, secret.length >= 8 ? [secret] : []);
      }),
      runs(4, 1_000),
    );
  });

  it('refuses text over the size bound before decoding it', () => {
    const started = performance.now();
    const err = thrownBy(() => parseCiphertext(TEXT_PREFIX + 'A'.repeat(3 * 1024 * 1024)));
    assertTypedError(err, DECRYPT);
    expect((err as Error).message).to.include('too long');
    expect(performance.now() - started).to.be.lessThan(500);
  });

  it('opens an envelope only with the exact bytes, header and context it was sealed with', () => {
    const binding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };
    fc.assert(
      fc.property(
        scope,
        bytes(64),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.constantFrom('iv', 'tag', 'payload', 'scope', 'context'),
        fc.nat(),
        (sc, plaintext, key, field, at) => {
          const dataKey = Buffer.from(key);
          const context = encryptionContext(sc, binding);
          const sealed = sealEnvelope(dataKey, plaintext, sc, context);
          const c: EnvelopeCiphertext = { mode: 'envelope', scope: sc, keyId: 'k', blob: Buffer.of(1), ...sealed };
          expect(openEnvelope(dataKey, c, context).equals(plaintext)).to.equal(true);
          const flip = (b: Buffer) => {
            const out = Buffer.from(b);
            if (out.length === 0) return Buffer.of(0);
            out[at % out.length] = (out[at % out.length] as number) ^ 1;
            return out;
          };
          let changed = c;
          let ctx = context;
          if (field === 'iv') changed = { ...c, iv: flip(c.iv) };
          else if (field === 'tag') changed = { ...c, tag: flip(c.tag) };
          else if (field === 'payload') changed = { ...c, payload: flip(c.payload) };
          else if (field === 'scope') changed = { ...c, scope: sc === 'strict' ? 'cluster' : 'strict' };
          else ctx = { ...context, 'secretsync.io/scope': `${sc}x` };
          const err = thrownBy(() => openEnvelope(dataKey, changed, ctx));
          assertTypedError(err, DECRYPT, plaintext.length >= 6 ? [plaintext.toString('latin1')] : []);
        },
      ),
      runs(5, 300),
    );
  });
});

describe('fuzz: AES-GCM open and master keys (src/crypto/aead.ts)', function () {
  this.timeout(timeoutFor(10_000));

  it('open throws only AuthenticationError, without detail, for arbitrary sealed fields', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        bytes(20),
        bytes(20),
        bytes(64),
        bytes(16),
        (key, iv, tag, ct, aad) => {
          const err = thrownBy(() => open(Buffer.from(key), { iv, tag, ciphertext: ct }, aad));
          // 2^-128: a random tag authenticating is a finding in itself.
          assertTypedError(err, [AuthenticationError]);
          expect((err as Error).message).to.equal(new AuthenticationError().message);
        },
      ),
      runs(6, 500),
    );
  });

  it('open refuses every one-bit change of a sealed message', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        bytes(64),
        bytes(16),
        fc.nat(),
        (key, plaintext, aad, bit) => {
          const k = Buffer.from(key);
          const sealed = seal(k, plaintext, aad);
          const all = Buffer.concat([sealed.iv, sealed.tag, sealed.ciphertext, aad]);
          const i = bit % (all.length * 8);
          all[i >> 3] = (all[i >> 3] as number) ^ (1 << (i & 7));
          const ivEnd = IV_LENGTH;
          const tagEnd = ivEnd + TAG_LENGTH;
          const ctEnd = tagEnd + sealed.ciphertext.length;
          const err = thrownBy(() =>
            open(
              k,
              { iv: all.subarray(0, ivEnd), tag: all.subarray(ivEnd, tagEnd), ciphertext: all.subarray(tagEnd, ctEnd) },
              all.subarray(ctEnd),
            ),
          );
          assertTypedError(err, [AuthenticationError]);
        },
      ),
      runs(7, 300),
    );
  });

  it('parseMasterKey returns exactly 32 bytes or its one error, for any bytes or text', () => {
    const keyish = fc.oneof(
      fc.uint8Array({ minLength: 30, maxLength: 34 }).map((a) => Buffer.from(a)),
      fc.uint8Array({ minLength: 31, maxLength: 33 }).map((a) => Buffer.from(a).toString('base64')),
      fc.uint8Array({ minLength: 31, maxLength: 33 }).map((a) => Buffer.from(a).toString('base64url')),
      fc.uint8Array({ minLength: 31, maxLength: 33 }).map((a) => ` ${Buffer.from(a).toString('hex')}\n`),
      fc.string({ maxLength: 100 }),
      bytes(100),
    );
    fc.assert(
      fc.property(keyish, (input) => {
        let key: Buffer | undefined;
        const err = thrownBy(() => (key = parseMasterKey(input)));
        if (err === undefined) expect(key?.length).to.equal(32);
        else {
          assertTypedError(err, [Error]);
          expect((err as Error).message).to.equal(MASTER_KEY_ERROR);
        }
      }),
      runs(8, 1_000),
    );
  });
});

describe('fuzz findings: ciphertext format (fixed examples)', () => {
  it('refuses a version written with leading zeros: one text per ciphertext', () => {
    // Found by `npm run fuzz` (seed 161798004): secretsync:v01:… parsed as the v1 ciphertext it spells.
    const text = formatCiphertext({ mode: 'direct', scope: 'cluster', keyId: 'k', blob: Buffer.of(1, 2, 3) });
    for (const variant of [text.replace(':v1:', ':v01:'), text.replace(':v1:', ':v000001:')]) {
      expect(isCiphertext(variant)).to.equal(true);
      const err = thrownBy(() => parseCiphertext(variant));
      assertTypedError(err, DECRYPT);
      expect((err as Error).message).to.include('the version is not written secretsync:v1:');
    }
    expect(parseCiphertext(text).blob).to.deep.equal(Buffer.of(1, 2, 3));
  });
});
