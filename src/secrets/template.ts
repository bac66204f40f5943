// `target.template.data`: Secret keys computed from the fetched values with
// mustache templates, written by an untrusted namespace. Logic-less (a template
// places values, never runs code), strict (a name that is not among the values
// is an error, not an empty string that would quietly write a broken
// credential) and bounded: mustache renders a whole string before anyone can
// look at its size, so a template naming a 1 MiB value ten thousand times would
// allocate gigabytes. Templates are therefore parsed with mustache's parser and
// rendered here, token by token, counting bytes and stopping before the output
// passes the bound.
import Mustache from 'mustache';
import { boundedText, LimitError, SecretsyncError } from '../api/errors.js';
import { DEFAULT_LIMITS, LimitReasons, utf8Bytes, type Limits } from '../api/limits.js';
import { WeightedFifo } from './weighted-fifo.js';

/**
 * A template that cannot be rendered: it does not parse, uses a partial, or
 * names a value that was not fetched. The message names the target key and the
 * missing name (names are not secret), never a value. Terminal: the spec (or
 * which values the store holds) must change.
 */
export class TemplateError extends SecretsyncError {
  constructor(message: string) {
    super('InvalidTemplate', 'terminal', message);
    this.name = 'TemplateError';
  }
}

/** The two bounds templating honours. */
export type TemplateLimits = Pick<Limits, 'maxTemplateBytes' | 'maxSecretBytes'>;

/**
 * Longest run of whitespace a template may hold. mustache's parser looks for a
 * tag's end with `/\s*}}/`, which backtracks over a whitespace run that is not
 * followed by `}}`: 64 KiB of spaces after `{{a` take 4.5 s (measured; the
 * time grows with the square of the run). With runs of at most 256, the worst
 * 64 KiB template parses in ~50 ms. No real template has 256 blanks in a row.
 */
export const MAX_WHITESPACE_RUN = 256;

/** A value a name resolved to, by the key it was found under. */
interface Found {
  name: string;
  value: string;
}

/** A parsed token: type, name or text, start, end, then the children of a section. */
type Token = [string, string, number, number, ...unknown[]];

/**
 * A writer of our own, without the template cache of mustache's default one:
 * that cache keeps every distinct template ever parsed, for the life of the
 * process, and templates come from every namespace (and change with every edit).
 */
const parser = new Mustache.Writer();
(parser as { templateCache?: unknown }).templateCache = undefined;

const key = (k: string) => `"${boundedText(k, 120)}"`;

/** What `\s` matches in a JavaScript regular expression, by code unit (tested per character, a regex cost 10–60 ms per 64 KiB). */
function isWhitespace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/** The first run of whitespace longer than the bound, if any (a plain loop: a regular expression would backtrack too). */
function longWhitespaceRun(template: string): number | undefined {
  let run = 0;
  for (let i = 0; i < template.length; i++) {
    if (isWhitespace(template.charCodeAt(i))) {
      run++;
      if (run > MAX_WHITESPACE_RUN) {
        const start = i - run + 1;
        let end = i;
        while (end < template.length && isWhitespace(template.charCodeAt(end))) end++;
        return end - start;
      }
    } else run = 0;
  }
  return undefined;
}

/**
 * Parsed templates by source, so that a refresh does not parse a 64 KiB
 * template again (10–60 ms, and as much garbage): first in, first out, bounded
 * by the source characters it holds. The parsed tokens are about the size of
 * their source (mustache joins runs of text), and are only read.
 */
const PARSE_CACHE_MAX_CHARS = 4 * 1024 * 1024;
const parsedBySource = new WeightedFifo<Token[]>(PARSE_CACHE_MAX_CHARS);

function parse(targetKey: string, template: string): Token[] {
  const cached = parsedBySource.get(template);
  if (cached) return cached;
  const tokens = parseUncached(targetKey, template);
  parsedBySource.set(template, tokens, template.length);
  return tokens;
}

function parseUncached(targetKey: string, template: string): Token[] {
  const run = longWhitespaceRun(template);
  if (run !== undefined)
    throw new TemplateError(
      `template for key ${key(targetKey)} has ${run} whitespace characters in a row; at most ${MAX_WHITESPACE_RUN} are allowed`,
    );
  try {
    return parser.parse(template) as Token[];
  } catch (err) {
    // mustache's parse errors describe the template's structure (positions, section names), not the values.
    const detail = err instanceof Error ? (err.message.split('\n')[0] ?? '') : 'parse error';
    throw new TemplateError(`template for key ${key(targetKey)} is invalid: ${boundedText(detail)}`);
  }
}

/**
 * Renders `target.template.data` over the fetched values.
 *
 * - `{{name}}`, `{{{name}}}` and `{{&name}}` insert the value as it is (no HTML
 *   escaping). A name is a whole key, dots included (`{{tls.crt}}` is the value
 *   of key `tls.crt`), never a path into it.
 * - A name that is not among the values is a TemplateError naming the target
 *   key and the name. So is a section over one, `{{#name}}` or `{{^name}}`:
 *   sections test whether a fetched value is empty, not whether it exists.
 * - `{{#name}}…{{/name}}` renders its body when the value is not empty (once;
 *   inside it `{{.}}` is that value), `{{^name}}…{{/name}}` when it is empty.
 * - Partials (`{{> name}}`) are not available: a TemplateError. Comments and
 *   delimiter changes work as in mustache.
 *
 * Bounds: all template sources together may hold `limits.maxTemplateBytes`
 * UTF-8 bytes (LimitError TemplateTooLarge, terminal: the spec is too big).
 * All rendered keys and values together may hold `limits.maxSecretBytes`;
 * rendering stops before the piece that would pass it is added (LimitError
 * SecretTooLarge, transient: it depends on the values, which may shrink).
 */
export function renderTemplates(
  templates: Record<string, string>,
  values: Record<string, string>,
  limits: TemplateLimits = DEFAULT_LIMITS,
): Record<string, string> {
  let sourceBytes = 0;
  for (const source of Object.values(templates)) sourceBytes += utf8Bytes(source);
  if (sourceBytes > limits.maxTemplateBytes) {
    throw new LimitError(
      LimitReasons.TemplateTooLarge,
      `target.template.data holds ${sourceBytes} bytes of templates, more than the ${limits.maxTemplateBytes} allowed (--max-template-bytes)`,
      'terminal',
    );
  }

  // Parse every template first: a syntax error is reported even when another template is too big to render.
  const parsed = Object.entries(templates).map(([k, source]) => [k, parse(k, source)] as const);

  const valueBytes = new Map<string, number>();
  const bytesOfValue = (name: string, value: string): number => {
    let bytes = valueBytes.get(name);
    if (bytes === undefined) {
      bytes = utf8Bytes(value);
      valueBytes.set(name, bytes);
    }
    return bytes;
  };

  const out: Record<string, string> = {};
  let total = 0;
  const spend = (bytes: number, targetKey: string) => {
    if (total + bytes > limits.maxSecretBytes) {
      throw new LimitError(
        LimitReasons.SecretTooLarge,
        `template for key ${key(targetKey)} renders more than the ${limits.maxSecretBytes} bytes allowed for one Secret (--max-secret-bytes)`,
        'transient',
      );
    }
    total += bytes;
  };

  for (const [targetKey, tokens] of parsed) {
    spend(utf8Bytes(targetKey), targetKey);
    const pieces: string[] = [];
    const lookup = (name: string, dot: Found | undefined, tag: string): Found => {
      if (name === '.') {
        if (dot === undefined)
          throw new TemplateError(
            `template for key ${key(targetKey)} uses {{${tag}.}} outside a section; {{.}} is the value of the section it is in`,
          );
        return dot;
      }
      if (!Object.hasOwn(values, name)) {
        throw new TemplateError(
          `template for key ${key(targetKey)} refers to ${key(name)} ({{${tag}${boundedText(name, 120)}}}), which is not among the fetched values`,
        );
      }
      return { name, value: values[name] as string };
    };

    // Walked with an explicit stack: nesting depth is the template author's choice, the call stack is not.
    const stack: { tokens: Token[]; next: number; dot: Found | undefined }[] = [{ tokens, next: 0, dot: undefined }];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as (typeof stack)[number];
      const token = frame.tokens[frame.next++];
      if (token === undefined) {
        stack.pop();
        continue;
      }
      const [type, text] = token;
      switch (type) {
        case 'text':
          spend(utf8Bytes(text), targetKey);
          pieces.push(text);
          break;
        case 'name':
        case '&': {
          const found = lookup(text, frame.dot, type === '&' ? '&' : '');
          // The piece's size is checked before it is added: nothing past the bound is ever held.
          spend(bytesOfValue(found.name, found.value), targetKey);
          pieces.push(found.value);
          break;
        }
        case '#':
        case '^': {
          const found = lookup(text, frame.dot, type);
          const children = token[4] as Token[];
          if (type === '#' ? found.value !== '' : found.value === '')
            stack.push({ tokens: children, next: 0, dot: type === '#' ? found : frame.dot });
          break;
        }
        case '!':
        case '=':
          break;
        case '>':
          throw new TemplateError(
            `template for key ${key(targetKey)} uses a partial ({{> ${boundedText(text, 120)}}}); partials are not available`,
          );
        default:
          throw new TemplateError(`template for key ${key(targetKey)} has a tag mustache cannot render`);
      }
    }
    // Defined, not assigned: a key named __proto__ is a valid Secret key, not the object's prototype.
    Object.defineProperty(out, targetKey, {
      value: pieces.join(''),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
