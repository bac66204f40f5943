// Fuzzing the RE2 pattern compiler (src/secrets/pattern.ts) beyond
// test/unit/secrets/pattern.test.ts (which checks the size estimate against
// RE2's compiler and agreement with RegExp on well-formed patterns): any text a
// namespace writes as `find.nameRegexp`, of any length, compiles or fails with
// SpecError on one bounded line, in bounded time; a compiled pattern stays
// within the instruction bound and tests the longest entry name a backend
// lists (SSM allows 2,048 characters) in bounded time.
import { expect } from 'chai';
import fc from 'fast-check';
import { SpecError } from '../../../src/api/errors.js';
import { MAX_NAME_PATTERN_INSTRUCTIONS, MAX_NAME_PATTERN_LENGTH, compileNamePattern, estimateProgramSize } from '../../../src/secrets/pattern.js';
import { assertTypedError, runs, thrownBy, timeoutFor } from './fuzz.js';

/** The syntax RE2 and its look-alikes have, among arbitrary characters. */
const token = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '(',
      ')',
      '(?:',
      '(?i)',
      '(?P<n>',
      '(?<n>',
      '(?=',
      '(?<!',
      '|',
      '[',
      ']',
      '[^',
      '[:alpha:]',
      '-',
      '^',
      '$',
    ),
  },
  {
    weight: 4,
    arbitrary: fc.constantFrom('*', '+', '?', '*?', '{', '}', '{2}', '{0,9}', '{1000}', '{2,}', '{,3}', '{99999}'),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '\\',
      '\\d',
      '\\pL',
      '\\p{Greek}',
      '\\P{',
      '\\x{10FFFF}',
      '\\x{110000}',
      '\\Q',
      '\\E',
      '\\1',
      '\\k<n>',
      '\\z',
      '\\C',
      '.',
      '\\b',
    ),
  },
  { weight: 3, arbitrary: fc.constantFrom('a', 'b', '/', 'é', '日', '😀', '\ud800', '\udc00', '\u0000', ' ') },
  { weight: 2, arbitrary: fc.string({ maxLength: 4, unit: 'binary' }) },
);
const pattern = fc.oneof(
  fc.array(token, { maxLength: 60 }).map((t) => t.join('')),
  // Near and past the length bound: a short piece repeated.
  fc.tuple(fc.array(token, { minLength: 1, maxLength: 6 }), fc.integer({ min: 100, max: 1_100 })).map(([t, n]) =>
    t
      .join('')
      .repeat(Math.ceil(n / Math.max(1, t.join('').length)))
      .slice(0, n),
  ),
  fc.string({ maxLength: 200, unit: 'binary' }),
);
const name = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc
    .tuple(fc.constantFrom('a', 'ab', 'a/', 'é', '😀', 'x1-'), fc.integer({ min: 1, max: 2_048 }))
    .map(([s, n]) => s.repeat(n).slice(0, 2_048)),
);

describe('fuzz: RE2 name patterns', function () {
  this.timeout(timeoutFor(25_000));

  it('compiles any text or refuses it with SpecError, quickly, and tests a 2,048-character name quickly', () => {
    fc.assert(
      fc.property(pattern, name, (p, n) => {
        let compiled: ReturnType<typeof compileNamePattern> | undefined;
        const started = performance.now();
        const err = thrownBy(() => (compiled = compileNamePattern(p)));
        const compiling = performance.now() - started;
        expect(compiling, `compiling ${JSON.stringify(p.slice(0, 60))}: ${compiling.toFixed(0)} ms`).to.be.lessThan(
          1_000,
        );
        if (err !== undefined) {
          assertTypedError(err, [SpecError]);
          expect((err as SpecError).reason).to.equal('InvalidSpec');
          return;
        }
        expect(p.length).to.be.at.most(MAX_NAME_PATTERN_LENGTH);
        const testing = performance.now();
        const matched = compiled?.test(n);
        const elapsed = performance.now() - testing;
        expect(matched).to.be.a('boolean');
        expect(
          elapsed,
          `${JSON.stringify(p.slice(0, 60))} on ${n.length} characters: ${elapsed.toFixed(0)} ms`,
        ).to.be.lessThan(1_000);
      }),
      runs(61, 400),
    );
  });

  it('estimates the size of any text without throwing, in one pass', () => {
    fc.assert(
      fc.property(pattern, (p) => {
        const started = performance.now();
        const size = estimateProgramSize(p);
        expect(Number.isFinite(size) && size >= 8, String(size)).to.equal(true);
        expect(performance.now() - started).to.be.lessThan(200);
      }),
      runs(62, 1_000),
    );
  });
});

describe('fuzz findings: RE2 name patterns (fixed examples)', () => {
  const nested = (count: string, levels: number) => `${'(?:'.repeat(levels)}a${`)${count}`.repeat(levels)}`;

  it('estimates nested counted repetitions as a large finite size, never Infinity or NaN', () => {
    for (const p of ['{99999}'.repeat(140), nested('{99999}', 62), `(?:${nested('{99999}', 62)}){0}`]) {
      expect(p.length).to.be.at.most(MAX_NAME_PATTERN_LENGTH);
      const size = estimateProgramSize(p);
      expect(Number.isFinite(size), `${p.slice(0, 30)}: ${size}`).to.equal(true);
      // Zero copies of anything are nothing (RE2 then refuses the count of 99999 itself).
      if (!p.endsWith('{0}')) expect(size).to.be.greaterThan(MAX_NAME_PATTERN_INSTRUCTIONS);
      const err = thrownBy(() => compileNamePattern(p));
      assertTypedError(err, [SpecError]);
      expect((err as Error).message).to.not.match(/Infinity|NaN/);
    }
  });
});
