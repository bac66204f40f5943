// `dataFrom.find.nameRegexp` is written by whoever may create a ManagedSecret,
// an untrusted namespace, and runs inside the operator against every entry name
// a backend lists. JavaScript's RegExp backtracks: `(a+)+$` over thirty `a`s and
// a `!` takes seconds, and one such pattern froze the operator (every sync of
// every namespace) for more than 20 s. The field is documented as RE2, so it is
// compiled with RE2's semantics and its linear-time guarantee, by `re2js`, a
// pure-JavaScript port of RE2 (Go's regexp). Not the `re2` package: a native
// addon that needs a compiler or a prebuilt binary downloaded at install time,
// neither of which the image build may count on. Not `re2-wasm`: a WebAssembly
// build that is no longer maintained and adds an async-loaded binary for no
// gain at the sizes here (names are short; patterns at most 1024 characters).
import { RE2JS, RE2JSException, RE2JSSyntaxException } from 're2js';
import { boundedText, SpecError } from '../api/errors.js';
import { WeightedFifo } from './weighted-fifo.js';

/** Longest pattern accepted; the CRD's maxLength for nameRegexp is the same. */
export const MAX_NAME_PATTERN_LENGTH = 1024;

/**
 * Largest compiled program accepted. Matching is linear in the name, but the
 * factor is the program's size, and a counted repetition copies its body
 * (`\pL{1000}` is a thousand instructions): a 1024-character pattern can
 * compile to 100,000 instructions and spend a second and more on one long
 * name. Name filters need tens of instructions; 2,000 leaves room for any real one
 * (and bounds what a hostile one costs: re2js keeps ~150 bytes per instruction,
 * and compiling 4,000 took up to 90 ms).
 */
export const MAX_NAME_PATTERN_INSTRUCTIONS = 2_000;

/** A compiled entry-name pattern: `test` says whether it matches anywhere in the name (like RegExp.test). */
export interface NamePattern {
  test(name: string): boolean;
}

/** What RE2 does not have, and that people write out of JavaScript or PCRE habit: named for a clear message. */
const UNSUPPORTED: readonly { re: RegExp; what: string }[] = [
  // An even run of backslashes (none included) before the construct: it is not itself escaped.
  { re: /(?:^|[^\\])(?:\\\\)*(\(\?=)/, what: 'lookahead' },
  { re: /(?:^|[^\\])(?:\\\\)*(\(\?!)/, what: 'negative lookahead' },
  { re: /(?:^|[^\\])(?:\\\\)*(\(\?<=)/, what: 'lookbehind' },
  { re: /(?:^|[^\\])(?:\\\\)*(\(\?<!)/, what: 'negative lookbehind' },
  { re: /(?:^|[^\\])(?:\\\\)*(\\[1-9])/, what: 'backreference' },
  { re: /(?:^|[^\\])(?:\\\\)*(\\k<)/, what: 'named backreference' },
];

/**
 * Compiles a `find.nameRegexp` with RE2 semantics: matching takes time linear
 * in the name, whatever the pattern. Throws SpecError (InvalidSpec, terminal)
 * naming what is wrong with the pattern: lookaround and backreferences, which
 * RE2 does not have, or any other syntax error. Entry names and patterns are
 * not secret; the pattern is still shortened to one line in the message.
 */
export function compileNamePattern(pattern: string): NamePattern {
  const shown = `find.nameRegexp "${boundedText(pattern, 100)}"`;
  if (pattern.length > MAX_NAME_PATTERN_LENGTH)
    throw new SpecError(`${shown} is ${pattern.length} characters long, more than ${MAX_NAME_PATTERN_LENGTH}`);
  for (const { re, what } of UNSUPPORTED) {
    const found = re.exec(pattern);
    if (found)
      throw new SpecError(
        `${shown} uses a ${what} (${found[1] ?? ''}), which RE2 syntax does not support; match the name without it`,
      );
  }
  const cached = cache.get(pattern);
  if (cached) return cached;
  // Compiling is the costly part (a 1024-character pattern can take 300 ms): refuse big programs before it.
  const estimate = estimateProgramSize(pattern);
  if (estimate > MAX_NAME_PATTERN_INSTRUCTIONS) throw tooBig(shown, `about ${estimate}`);
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern);
  } catch (err) {
    if (err instanceof RE2JSSyntaxException) {
      const at = err.getPattern();
      throw new SpecError(
        `${shown} is not a valid RE2 regular expression: ${err.getDescription()}${at ? ` at "${boundedText(at, 40)}"` : ''}`,
      );
    }
    if (err instanceof RE2JSException)
      throw new SpecError(`${shown} is not a valid RE2 regular expression: ${boundedText(err.message)}`);
    throw err;
  }
  // The estimate is an upper bound; this is the backstop should re2js ever compile differently.
  const size = programSize(compiled);
  if (size !== undefined && size > MAX_NAME_PATTERN_INSTRUCTIONS) throw tooBig(shown, String(size));
  const result: NamePattern = { test: (name: string) => compiled.test(name) };
  cache.set(pattern, result, size ?? estimate);
  return result;
}

const tooBig = (shown: string, size: string) =>
  new SpecError(
    `${shown} compiles to ${size} RE2 instructions, more than ${MAX_NAME_PATTERN_INSTRUCTIONS}; use smaller repetition counts`,
  );

/**
 * Compiled patterns by source, so that the syncs of one ManagedSecret compile its
 * pattern once: a first-in-first-out cache bounded by the instructions it holds,
 * not by its entries. re2js keeps about 150 bytes per instruction (measured:
 * 600 KiB for a 4,000-instruction program), so 128 large programs from a hostile
 * namespace held 77 MiB; 100,000 instructions hold about 15 MiB at most, and
 * thousands of ordinary patterns of tens of instructions.
 */
const CACHE_MAX_INSTRUCTIONS = 100_000;
const cache = new WeightedFifo<NamePattern>(CACHE_MAX_INSTRUCTIONS);

/**
 * An upper bound of the instructions RE2 compiles `pattern` to, read from the
 * text in one pass without compiling: every atom (a character, a class, an
 * escape, an assertion) counts 1, a group its content (plus 2 if it captures), `*` `+` `?` add 2,
 * `|` adds 1, and a counted repetition `{n,m}` copies what it repeats m times
 * and adds one instruction per optional copy, plus 2. Over-counting only refuses patterns near
 * the bound; the syntax itself is left to RE2.
 */
export function estimateProgramSize(pattern: string): number {
  // Far above any bound, yet exact in floating point when added up over 1024 characters.
  const MAX_ESTIMATE = 2 ** 40;
  interface Frame {
    total: number;
    last: number;
    overhead: number;
  }
  const stack: Frame[] = [{ total: 0, last: 0, overhead: 0 }];
  const top = () => stack[stack.length - 1] as Frame;
  const atom = (weight: number) => {
    const f = top();
    f.total += f.last;
    f.last = weight;
  };
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i] as string;
    if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === 'Q') {
        // \Q...\E: every character literal.
        const end = pattern.indexOf('\\E', i + 2);
        const stop = end < 0 ? pattern.length : end;
        for (let k = i + 2; k < stop; k++) atom(1);
        i = end < 0 ? stop : end + 2;
        continue;
      }
      // \p{Greek}, \x{10FFFF}: the braces belong to the escape, not a repetition.
      if ((next === 'p' || next === 'P' || next === 'x') && pattern[i + 2] === '{') {
        const close = pattern.indexOf('}', i + 3);
        i = close < 0 ? pattern.length : close + 1;
      } else i += 2;
      atom(1);
      continue;
    }
    if (ch === '[') {
      // A class is one instruction; skip to its closing bracket (a leading ] or ^] is a member).
      let k = i + 1;
      if (pattern[k] === '^') k++;
      if (pattern[k] === ']') k++;
      while (k < pattern.length && pattern[k] !== ']') {
        if (pattern[k] === '\\') k++;
        else if (pattern[k] === '[' && pattern[k + 1] === ':') {
          const close = pattern.indexOf(':]', k + 2);
          if (close >= 0) k = close + 1;
        }
        k++;
      }
      i = k + 1;
      atom(1);
      continue;
    }
    if (ch === '(') {
      // (?:…), (?i:…) and (?i) capture nothing; (…), (?P<n>…) and (?<n>…) record two positions.
      const capturing = pattern[i + 1] !== '?' || pattern[i + 2] === 'P' || pattern[i + 2] === '<';
      stack.push({ total: 0, last: 0, overhead: capturing ? 2 : 0 });
      i++;
      continue;
    }
    if (ch === ')' && stack.length > 1) {
      const f = stack.pop() as Frame;
      atom(f.total + f.last + f.overhead);
      i++;
      continue;
    }
    if (ch === '|') {
      const f = top();
      f.total += f.last + 1;
      f.last = 0;
      i++;
      continue;
    }
    if (ch === '*' || ch === '+' || ch === '?') {
      top().last += 2;
      i++;
      continue;
    }
    if (ch === '{') {
      const counted = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i, i + 16));
      if (counted) {
        const min = Number(counted[1]);
        const max = counted[3] ? Number(counted[3]) : min;
        const f = top();
        const copies = Math.max(min, max);
        // Capped: sixty nested {99999} would reach Infinity, and Infinity copied {0} times NaN, which no bound refuses.
        f.last = Math.min(f.last * copies + (copies - Math.min(min, max)) + 2, MAX_ESTIMATE);
        i += counted[0].length;
        continue;
      }
    }
    atom(1);
    i++;
  }
  while (stack.length > 1) {
    const f = stack.pop() as Frame;
    atom(f.total + f.last + f.overhead);
  }
  const f = top();
  // The unanchored search loop, the match and the fail instructions.
  return f.total + f.last + 8;
}

/** The compiled program's instruction count; re2js does not type it, so it is read defensively. */
function programSize(compiled: RE2JS): number | undefined {
  const prog = (compiled.re2() as { prog?: { numInst?: () => unknown } }).prog;
  const size = typeof prog?.numInst === 'function' ? prog.numInst() : undefined;
  return typeof size === 'number' ? size : undefined;
}
