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

/** Longest pattern accepted; the CRD's maxLength for nameRegexp is the same. */
export const MAX_NAME_PATTERN_LENGTH = 1024;

/**
 * Largest compiled program accepted. Matching is linear in the name, but the
 * factor is the program's size, and a counted repetition copies its body
 * (`\pL{1000}` is a thousand instructions): a 1024-character pattern can
 * compile to 100,000 instructions and spend a second and more on one long
 * name. Name filters need tens of instructions; 5,000 leaves room for any real one.
 */
export const MAX_NAME_PATTERN_INSTRUCTIONS = 5_000;

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
  const size = programSize(compiled);
  if (size !== undefined && size > MAX_NAME_PATTERN_INSTRUCTIONS)
    throw new SpecError(
      `${shown} compiles to ${size} RE2 instructions, more than ${MAX_NAME_PATTERN_INSTRUCTIONS}; use smaller repetition counts`,
    );
  return { test: (name: string) => compiled.test(name) };
}

/** The compiled program's instruction count; re2js does not type it, so it is read defensively. */
function programSize(compiled: RE2JS): number | undefined {
  const prog = (compiled.re2() as { prog?: { numInst?: () => unknown } }).prog;
  const size = typeof prog?.numInst === 'function' ? prog.numInst() : undefined;
  return typeof size === 'number' ? size : undefined;
}
