// Run settings shared by the fuzz properties in this folder. Under
// `npm run test:unit` every property runs a small, fixed number of times with a
// fixed seed, so a failure is the same failure on every machine; under
// `npm run fuzz` (FUZZ=1) the same properties run many more times with a fresh
// seed, printed once, so that anything found can be replayed exactly:
//
//   FUZZ_SEED=<printed seed> npm run fuzz
//
// FUZZ_RUNS sets the runs of every property; without it each runs FUZZ_SCALE
// (default 100) times its unit-test count. FUZZ_SEED fixes the seed.
import fc, { type Parameters } from 'fast-check';

const env = process.env;
/** Whether this is a long fuzz run rather than the unit suite. */
export const FUZZING = env.FUZZ === '1' || env.FUZZ_RUNS !== undefined || env.FUZZ_SEED !== undefined;

function positiveInteger(name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${text}`);
  return n;
}

const fuzzSeed = FUZZING
  ? env.FUZZ_SEED !== undefined && env.FUZZ_SEED !== ''
    ? Number(env.FUZZ_SEED)
    : Math.floor(Math.random() * 2 ** 31)
  : undefined;
if (fuzzSeed !== undefined) {
  if (!Number.isSafeInteger(fuzzSeed)) throw new Error(`FUZZ_SEED must be an integer, not ${env.FUZZ_SEED}`);
  console.log(`fuzz seed ${fuzzSeed}: repeat this run with FUZZ_SEED=${fuzzSeed} npm run fuzz`);
}
const fuzzRuns = FUZZING ? positiveInteger('FUZZ_RUNS', 0) || undefined : undefined;
const fuzzScale = positiveInteger('FUZZ_SCALE', 100);

/**
 * fast-check parameters for one property: `runs` times with `seed` in the unit
 * suite, many more with the fuzz seed under `npm run fuzz`. fast-check's own
 * failure report names the seed and the path of the shrunk counterexample.
 */
export function runs<T>(seed: number, runs: number, extra: Parameters<T> = {}): Parameters<T> {
  if (fuzzSeed === undefined) return { ...extra, seed, numRuns: runs };
  return { ...extra, seed: fuzzSeed + seed, numRuns: fuzzRuns ?? runs * fuzzScale };
}

/** A mocha timeout for a test whose properties take about `unitMs` in the unit suite; none while fuzzing. */
export function timeoutFor(unitMs: number): number {
  return FUZZING ? 0 : unitMs;
}

/** Calls `fn` and returns what it threw, or undefined. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Awaits `fn` and returns what it rejected with, or undefined. */
export async function rejectionOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Error messages must be one bounded line: never a dump of the input. */
export const MAX_MESSAGE_CHARS = 1_000;

/**
 * What every error from a parser of untrusted bytes must satisfy: an instance
 * of one of `allowed`, a message of at most MAX_MESSAGE_CHARS characters on
 * one line that contains none of `secrets` (the values in the input).
 */
export function assertTypedError(
  err: unknown,
  allowed: readonly (abstract new (...args: never[]) => Error)[],
  secrets: readonly string[] = [],
): void {
  if (!allowed.some((cls) => err instanceof cls)) {
    const what = err instanceof Error ? `${err.name}: ${err.message.slice(0, 300)}` : String(err).slice(0, 300);
    throw new Error(`expected one of ${allowed.map((c) => c.name).join(', ')}, got ${what}`);
  }
  const message = (err as Error).message;
  if (message.length > MAX_MESSAGE_CHARS)
    throw new Error(`error message is ${message.length} characters long: ${message.slice(0, 200)}…`);
  if (/[\r\n]/.test(message)) throw new Error(`error message spans lines: ${JSON.stringify(message.slice(0, 200))}`);
  for (const s of secrets)
    if (s.length >= 6 && message.includes(s))
      throw new Error(`error message quotes a value from the input: ${message.slice(0, 200)}`);
}

/** One change to a byte string: flip, overwrite, insert, delete or truncate. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; value: number }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

/** `input` with one mutation applied (positions wrap around its length). */
export function mutate(input: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(input);
  const at = input.length === 0 ? 0 : m.at % (input.length + (m.kind === 'insert' ? 1 : 0));
  switch (m.kind) {
    case 'flip':
      if (out.length > 0) out[at] = (out[at] as number) ^ (1 << m.bit);
      return out;
    case 'set':
      if (out.length > 0) out[at] = m.value;
      return out;
    case 'insert':
      return Buffer.concat([out.subarray(0, at), Buffer.of(m.value), out.subarray(at)]);
    case 'delete':
      return Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
    case 'truncate':
      return out.subarray(0, at);
  }
}

/** One structural change to a JSON document: a value replaced, a key or element removed, elements repeated or swapped. */
export type JsonMutation =
  | { kind: 'replace'; at: number; value: unknown }
  | { kind: 'remove'; at: number }
  | { kind: 'repeat'; at: number }
  | { kind: 'swap'; at: number };

/** Values a writer of the file might put where another was: near misses first, then anything. */
const replacement: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(0, 1, 2, -1, 1.5, 2 ** 53, null, true, false, '', '0', 'db/prod', [], {}),
  fc.integer(),
  fc.string({ maxLength: 40 }),
  fc.string({ maxLength: 2_000, unit: 'binary', size: 'max' }),
  // A forged field that would spoof a log or terminal line, or flood one.
  fc.constantFrom('line\nbreak', 'carriage\rreturn', '\u001b[2J\u001b[31mred', 'x'.repeat(100_000)),
  fc.jsonValue({ maxDepth: 3 }),
);

export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: replacement }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat() }),
);

type Container = Record<string, unknown> | unknown[];
const isContainer = (v: unknown): v is Container => typeof v === 'object' && v !== null;

/** Every (container, key) slot of a JSON document, parents before children. */
function slots(doc: unknown): [Container, string | number][] {
  const out: [Container, string | number][] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v))
      v.forEach((x, i) => {
        out.push([v, i]);
        walk(x);
      });
    else if (isContainer(v))
      for (const [k, x] of Object.entries(v)) {
        out.push([v, k]);
        walk(x);
      }
  };
  walk(doc);
  return out;
}

/** A deep copy of `doc` with `m` applied to one of its slots (picked by `m.at`, wrapping around). */
export function mutateJson(doc: unknown, m: JsonMutation): unknown {
  const copy = structuredClone(doc);
  const all = slots(copy);
  if (all.length === 0) return m.kind === 'replace' ? m.value : copy;
  const [parent, key] = all[m.at % all.length] as [Container, string | number];
  if (Array.isArray(parent)) {
    const i = key as number;
    if (m.kind === 'replace') parent[i] = m.value;
    else if (m.kind === 'remove') parent.splice(i, 1);
    else if (m.kind === 'repeat') parent.splice(i, 0, structuredClone(parent[i]));
    else if (parent.length > 1) {
      const j = (i + 1) % parent.length;
      [parent[i], parent[j]] = [parent[j], parent[i]];
    }
  } else {
    const k = key as string;
    if (m.kind === 'replace') parent[k] = m.value;
    else if (m.kind === 'remove') delete parent[k];
    else if (m.kind === 'repeat') parent[`${k}_`] = structuredClone(parent[k]);
    else {
      // Swap with the next key's value.
      const keys = Object.keys(parent);
      const other = keys[(keys.indexOf(k) + 1) % keys.length] as string;
      [parent[k], parent[other]] = [parent[other], parent[k]];
    }
  }
  return copy;
}

/** Cuts `bytes` at the given positions (taken modulo its length, in any order). */
export function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  return out;
}
