import { expect } from 'chai';
import fc from 'fast-check';
import { SpecError } from '../../../src/api/errors.js';
import { RE2JS } from 're2js';
import {
  compileNamePattern,
  estimateProgramSize,
  MAX_NAME_PATTERN_INSTRUCTIONS,
  MAX_NAME_PATTERN_LENGTH,
} from '../../../src/secrets/pattern.js';

function specErrorOf(pattern: string): SpecError {
  try {
    compileNamePattern(pattern);
  } catch (err) {
    if (err instanceof SpecError) return err;
    throw new Error(`expected a SpecError, got ${String(err)}`);
  }
  throw new Error(`expected a SpecError for ${pattern}, but it compiled`);
}

describe('compileNamePattern', () => {
  it('matches anywhere in the name, like RegExp.test', () => {
    const p = compileNamePattern('^app/(prod|staging)/[a-z0-9-]+$');
    expect(p.test('app/prod/db-password')).to.equal(true);
    expect(p.test('app/dev/db-password')).to.equal(false);
    expect(compileNamePattern('db').test('app/prod/db-password')).to.equal(true);
    expect(compileNamePattern('(?i)DB').test('app/prod/db-password')).to.equal(true);
    expect(compileNamePattern('^(?P<env>prod)/').test('prod/x')).to.equal(true);
  });

  it('runs in linear time: a catastrophic backtracking pattern answers at once', () => {
    // With JavaScript's RegExp, /(a+)+$/.test('a'.repeat(n) + '!') took 0.5 s for n = 22, 2.2 s for 24 and
    // 7.8 s for 26 (measured; about double per added "a", so minutes for 30), and an operator froze for more
    // than 20 s on such a pattern. It is not run here: it would stall the test run. RE2 answers in one pass.
    const started = performance.now();
    const p = compileNamePattern('(a+)+$');
    expect(p.test(`${'a'.repeat(30)}!`)).to.equal(false);
    expect(p.test(`${'a'.repeat(100_000)}!`)).to.equal(false);
    expect(compileNamePattern('(x+x+)+y').test('x'.repeat(5_000))).to.equal(false);
    expect(compileNamePattern('^(([a-z])+.)+[A-Z]([a-z])+$').test('a'.repeat(5_000) + '!')).to.equal(false);
    const elapsed = performance.now() - started;
    expect(elapsed, `${elapsed.toFixed(1)} ms`).to.be.lessThan(100);
  });

  for (const [pattern, what, piece] of [
    ['^app/(?=prod)', 'lookahead', '(?='],
    ['^app/(?!dev)', 'negative lookahead', '(?!'],
    ['(?<=app/)db', 'lookbehind', '(?<='],
    ['(?<!test/)db', 'negative lookbehind', '(?<!'],
    ['^(a)\\1$', 'backreference', '\\1'],
    ['(?<x>a)\\k<x>', 'named backreference', '\\k<'],
  ] as const) {
    it(`refuses a ${what} with a message that names it: ${pattern}`, () => {
      const err = specErrorOf(pattern);
      expect(err.reason).to.equal('InvalidSpec');
      expect(err.retry).to.equal('terminal');
      expect(err.message).to.include(`uses a ${what} (${piece})`);
      expect(err.message).to.include('RE2');
      expect(err.message).to.include(`"${pattern}"`);
    });
  }

  it('does not mistake escaped constructs for lookaround or backreferences', () => {
    expect(compileNamePattern('\\(\\?=').test('(?=')).to.equal(true);
    expect(compileNamePattern('\\\\1').test('\\1')).to.equal(true);
    expect(specErrorOf('\\\\\\1').message).to.include('backreference');
  });

  for (const [pattern, detail] of [
    ['[a-z', 'missing closing ]'],
    ['a**', 'invalid nested repetition operator'],
    ['x{2,1}', 'invalid repeat count'],
    ['\\Z', 'invalid escape sequence'],
    ['(unclosed', 'missing closing )'],
  ] as const) {
    it(`refuses an invalid pattern with RE2's description: ${pattern}`, () => {
      const err = specErrorOf(pattern);
      expect(err.message).to.include('is not a valid RE2 regular expression');
      expect(err.message).to.include(detail);
    });
  }

  it(`refuses patterns longer than ${MAX_NAME_PATTERN_LENGTH} characters`, () => {
    expect(specErrorOf('a'.repeat(MAX_NAME_PATTERN_LENGTH + 1)).message).to.include('characters long');
    expect(compileNamePattern('a'.repeat(MAX_NAME_PATTERN_LENGTH)).test('a'.repeat(2000))).to.equal(true);
  });

  it(`refuses patterns that compile to more than ${MAX_NAME_PATTERN_INSTRUCTIONS} instructions, without compiling them`, function () {
    this.timeout(20_000);
    // 900 characters, 100,000 instructions: compiling alone takes 100-300 ms, and matching one long name a second.
    const started = performance.now();
    for (const big of ['\\pL{1000}'.repeat(100), '(?:(?:a{10}){10}){10}'.repeat(40), '.{1000}'.repeat(140)]) {
      const err = specErrorOf(big);
      expect(err.message).to.match(/compiles to about \d+ RE2 instructions, more than 2000/);
    }
    // Compiling the three would take 0.3–1 s on a quiet machine; the estimate alone is far below (loose bound: CI may be busy).
    expect(performance.now() - started).to.be.lessThan(2_000);
    expect(compileNamePattern('[a-z]{1000}').test('a'.repeat(1000))).to.equal(true);
    expect(compileNamePattern('\\pL{900}\\pN{900}').test('a'.repeat(900) + '1'.repeat(900))).to.equal(true);
  });

  it('estimates at least the instructions RE2 compiles to (fast-check, fixed seed)', function () {
    this.timeout(30_000);
    const atom = fc.constantFrom(
      'a',
      '.',
      '[a-c]',
      '[^x]',
      '\\pL',
      '\\p{Greek}',
      '\\d',
      '\\b',
      '^',
      '$',
      '\\Qa{2}\\E',
      '[[:alpha:]]',
    );
    const quantifier = fc.constantFrom('', '*', '+', '?', '*?', '{3}', '{2,5}', '{4,}', '{0,3}', '{1}', '{0}');
    const piece: fc.Arbitrary<string> = fc.letrec((tie) => ({
      piece: fc.oneof(
        { depthSize: 'small' },
        fc.tuple(atom, quantifier).map(([a, q]) => a + q),
        fc
          .tuple(
            fc.constantFrom('(', '(?:', '(?i:', '(?s:'),
            fc.array(tie('piece'), { minLength: 1, maxLength: 3 }),
            fc.constantFrom('|', ''),
            fc.array(tie('piece'), { maxLength: 2 }),
            quantifier,
          )
          .map(([open, a, bar, b, q]) => `${open}${a.join('')}${bar}${b.join('')})${q}`),
      ),
    })).piece as fc.Arbitrary<string>;
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 5 }), (parts) => {
        const pattern = parts.join('');
        let compiled;
        try {
          compiled = RE2JS.compile(pattern);
        } catch {
          return; // Not valid RE2 (nested repetition counts over 1000): nothing to compare.
        }
        const actual = (compiled.re2() as unknown as { prog: { numInst(): number } }).prog.numInst();
        expect(estimateProgramSize(pattern), pattern).to.be.at.least(actual);
      }),
      { seed: 99, numRuns: 300 },
    );
  });

  it('keeps the message on one short line for a long pattern', () => {
    const err = specErrorOf(`${'x'.repeat(500)}\n(?=y)`);
    expect(err.message).to.not.include('\n');
    expect(err.message.length).to.be.lessThan(300);
  });

  it('agrees with RegExp on patterns both support (fast-check, fixed seed)', function () {
    this.timeout(30_000);
    const atom = fc.constantFrom('a', 'b', '.', '[ab]', '[^a]', '\\d', '/', '-', '(a|b)', '(?:ab)', 'x');
    const quantified = fc.tuple(atom, fc.constantFrom('', '*', '+', '?', '{2}', '{1,3}')).map(([a, q]) => a + q);
    const pattern = fc
      .tuple(fc.constantFrom('', '^'), fc.array(quantified, { minLength: 1, maxLength: 6 }), fc.constantFrom('', '$'))
      .map(([s, parts, e]) => s + parts.join('') + e);
    const name = fc.array(fc.constantFrom('a', 'b', 'x', '1', '/', '-', 'é'), { maxLength: 12 }).map((a) => a.join(''));
    fc.assert(
      fc.property(pattern, name, (p, n) => {
        expect(compileNamePattern(p).test(n), `${p} on ${n}`).to.equal(new RegExp(p).test(n));
      }),
      { seed: 1_204, numRuns: 1_000 },
    );
  });
});
