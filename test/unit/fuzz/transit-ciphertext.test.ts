// Fuzzing the Vault transit text form (src/crypto/transit-ciphertext.ts). A
// transit ciphertext comes from a ManagedSecret spec, a Git repository or a
// Vault KV entry, written by anyone: whatever the text, the parser throws only
// DecryptError with a bounded one-line message that quotes none of it, and a
// text that parses is the one canonical text of what it parsed to (so what the
// operator sends Vault is exactly what the text says).
import { expect } from 'chai';
import fc from 'fast-check';
import { INLINE_CIPHERTEXT_PATTERN } from '../../../src/api/schemas.js';
import type { CiphertextScope } from '../../../src/api/types.js';
import { isCiphertext, parseCiphertext } from '../../../src/crypto/ciphertext.js';
import {
  MIN_VAULT_CIPHERTEXT_BYTES,
  TRANSIT_PREFIX,
  formatTransitCiphertext,
  isTransitCiphertext,
  parseTransitCiphertext,
} from '../../../src/crypto/transit-ciphertext.js';
import { DecryptError } from '../../../src/providers/provider.js';
import { assertTypedError, mutate, mutation, runs, thrownBy, timeoutFor } from './fuzz.js';

const scope = fc.constantFrom<CiphertextScope>('strict', 'namespace', 'cluster');
const key = fc.stringMatching(/^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,40}[A-Za-z0-9_])?$/);
const vault = fc
  .tuple(
    fc.integer({ min: 1, max: 999_999_999 }),
    fc.uint8Array({ minLength: MIN_VAULT_CIPHERTEXT_BYTES, maxLength: 200 }),
  )
  .map(([v, b]) => `vault:v${v}:${Buffer.from(b).toString('base64')}`);
const transit = fc.record({ scope, key, vault });

const DECRYPT = [DecryptError] as const;

describe('fuzz: Vault transit ciphertext text form', function () {
  this.timeout(timeoutFor(20_000));

  it('round-trips every transit ciphertext, and both parsers and isCiphertext agree on what it is', () => {
    fc.assert(
      fc.property(transit, (c) => {
        const text = formatTransitCiphertext(c);
        expect(isCiphertext(text)).to.equal(true);
        // The CRD lets it through as data[].ciphertext.
        expect(new RegExp(INLINE_CIPHERTEXT_PATTERN).test(text), text).to.equal(true);
        expect(isTransitCiphertext(text)).to.equal(true);
        const parsed = parseTransitCiphertext(text);
        expect(parsed).to.deep.equal({ ...c, keyVersion: Number(/^vault:v(\d+):/.exec(c.vault)?.[1]) });
        // The KMS parser names it instead of calling it malformed.
        const err = thrownBy(() => parseCiphertext(text));
        assertTypedError(err, DECRYPT);
        expect((err as Error).message).to.include('Vault transit');
      }),
      runs(11, 300),
    );
  });

  it('parses arbitrary text to a DecryptError that quotes none of it, or to the transit ciphertext whose text it is', () => {
    const body = fc
      .array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:-_. v'.split('')), {
        maxLength: 200,
      })
      .map((a) => a.join(''));
    const prefixed = fc
      .tuple(
        fc.constantFrom(
          TRANSIT_PREFIX,
          `${TRANSIT_PREFIX}strict:`,
          `${TRANSIT_PREFIX}namespace:k:`,
          `${TRANSIT_PREFIX}cluster:k:vault:v1:`,
          'secretsync:transit:',
          'secretsync:v2:transit:',
        ),
        body,
      )
      .map(([p, b]) => p + b);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 100, unit: 'grapheme' }), prefixed), (text) => {
        const secret = text.trim().slice(TRANSIT_PREFIX.length);
        const err = thrownBy(() => {
          const c = parseTransitCiphertext(text);
          expect(formatTransitCiphertext(c)).to.equal(text.trim());
        });
        if (err !== undefined) assertTypedError(err, DECRYPT, secret.length >= 8 ? [secret] : []);
      }),
      runs(12, 1_000),
    );
  });

  it('refuses or canonically parses every byte-level mutation of a valid transit ciphertext', () => {
    fc.assert(
      fc.property(transit, fc.array(mutation, { minLength: 1, maxLength: 3 }), (c, ms) => {
        const text = formatTransitCiphertext(c);
        const mutated = ms.reduce(mutate, Buffer.from(text, 'utf8')).toString('utf8');
        const err = thrownBy(() => {
          const parsed = parseTransitCiphertext(mutated);
          // Whatever a mutation turned it into, that is exactly what the text says: nothing is dropped or guessed.
          expect(formatTransitCiphertext(parsed)).to.equal(mutated.trim());
        });
        if (err !== undefined) assertTypedError(err, DECRYPT, [c.vault.slice(9)]);
      }),
      runs(13, 1_000),
    );
  });

  it('refuses text over the size bound before looking at it', () => {
    const started = performance.now();
    const err = thrownBy(() =>
      parseTransitCiphertext(`${TRANSIT_PREFIX}strict:k:vault:v1:${'A'.repeat(3 * 1024 * 1024)}`),
    );
    assertTypedError(err, DECRYPT);
    expect((err as Error).message).to.include('too long');
    expect(performance.now() - started).to.be.lessThan(500);
  });
});
