import { expect } from 'chai';
import { LimitError } from '../../../src/api/errors.js';
import {
  assertLimits,
  checkFetchedValues,
  DEFAULT_LIMITS,
  tooManyEntries,
  utf8Bytes,
} from '../../../src/api/limits.js';

const WHAT = 'values from SecretStore team-a/vault';

function limitErrorOf(fn: () => unknown): LimitError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LimitError) return err;
    throw new Error(`expected a LimitError, got ${String(err)}`);
  }
  throw new Error('expected a LimitError, but none was thrown');
}

describe('limits', () => {
  it('defaults to the documented flag defaults', () => {
    expect(DEFAULT_LIMITS).to.deep.equal({
      maxTemplateBytes: 65_536,
      maxSecretBytes: 1_048_576,
      maxKeysPerSecret: 1_000,
      maxFindEntries: 500,
      maxValueBytes: 1_048_576,
    });
    expect(Object.isFrozen(DEFAULT_LIMITS)).to.equal(true);
    assertLimits(DEFAULT_LIMITS);
    expect(() => assertLimits({ ...DEFAULT_LIMITS, maxKeysPerSecret: 0 })).to.throw(RangeError, 'maxKeysPerSecret');
    expect(() => assertLimits({ ...DEFAULT_LIMITS, maxValueBytes: 1.5 })).to.throw(RangeError);
  });

  it('counts UTF-8 bytes, not UTF-16 code units', () => {
    expect(utf8Bytes('é')).to.equal(2);
    expect(utf8Bytes('😀')).to.equal(4);
    expect('😀'.length).to.equal(2);
  });

  describe('checkFetchedValues', () => {
    const limits = { ...DEFAULT_LIMITS, maxKeysPerSecret: 3, maxValueBytes: 10, maxSecretBytes: 20 };

    it('accepts values within every bound (the bounds are inclusive)', () => {
      // 1 + 9 + 1 + 9 = 20 bytes of keys and values, three keys allowed, ten bytes a value.
      checkFetchedValues({ a: 'x'.repeat(9), b: 'y'.repeat(9) }, limits, WHAT);
      checkFetchedValues({ a: '', b: '', c: 'x'.repeat(10) }, limits, WHAT);
    });

    it('refuses more keys than maxKeysPerSecret (TooManyKeys, transient)', () => {
      const err = limitErrorOf(() => checkFetchedValues({ a: '', b: '', c: '', d: '' }, limits, WHAT));
      expect(err.reason).to.equal('TooManyKeys');
      expect(err.retry).to.equal('transient');
      expect(err.message).to.equal(`${WHAT}: 4 keys, more than the 3 a Secret may hold (--max-keys-per-secret)`);
    });

    it('refuses a value over maxValueBytes in UTF-8 bytes, naming its key, not its value (ValueTooLarge)', () => {
      // Six characters, twelve bytes.
      const err = limitErrorOf(() => checkFetchedValues({ ok: 'x', big: 'éééééé' }, limits, WHAT));
      expect(err.reason).to.equal('ValueTooLarge');
      expect(err.retry).to.equal('transient');
      expect(err.message).to.include('key "big" is 12 bytes');
      expect(err.message).to.not.include('é');
      checkFetchedValues({ big: 'ééééé' }, limits, WHAT);
    });

    it('refuses keys and values over maxSecretBytes together (SecretTooLarge)', () => {
      // Keys count: 1 + 10 + 1 + 10 = 22 > 20, though every value fits.
      const err = limitErrorOf(() => checkFetchedValues({ a: 'x'.repeat(10), b: 'y'.repeat(10) }, limits, WHAT));
      expect(err.reason).to.equal('SecretTooLarge');
      expect(err.message).to.include('22 bytes');
      checkFetchedValues({ a: 'x'.repeat(9), b: 'y'.repeat(9) }, limits, WHAT);
    });

    it('names the same oversized key whatever the insertion order', () => {
      const one = limitErrorOf(() => checkFetchedValues({ z: 'x'.repeat(11), a: 'x'.repeat(11) }, limits, WHAT));
      const two = limitErrorOf(() => checkFetchedValues({ a: 'x'.repeat(11), z: 'x'.repeat(11) }, limits, WHAT));
      expect(one.message).to.equal(two.message);
    });
  });

  it('tooManyEntries names the query, shortened, and is transient', () => {
    const err = tooManyEntries(500, { nameRegexp: `^app/${'x'.repeat(300)}` });
    expect(err.reason).to.equal('TooManyEntries');
    expect(err.retry).to.equal('transient');
    expect(err.message).to.include('more than 500 entries (--max-find-entries)');
    expect(err.message.length).to.be.lessThan(250);
    expect(tooManyEntries(2, { prefix: 'team/' }).message).to.include('prefix "team/"');
  });
});
