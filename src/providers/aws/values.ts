// How AWS values become ManagedSecret values: JSON fields by property, JSON
// objects as properties, binary only when it is text. Shared by Secrets
// Manager and Parameter Store.
import { compileNamePattern, type NamePattern } from '../../secrets/pattern.js';
import { KeyNotFoundError, ProviderError, type Properties } from '../provider.js';

/**
 * One field of a JSON object value. `property` is first looked up as a field
 * name as is (names may contain dots), then as a dotted path into nested
 * objects (`db.password`) and arrays (`hosts.0`). Strings are returned as they
 * are, anything else as JSON. Missing: KeyNotFoundError naming `where` and the
 * property, never the value.
 */
export function selectProperty(text: string, property: string, where: string, key: string): string {
  const object = parseJsonObject(text);
  if (object === undefined) {
    throw new KeyNotFoundError(`${where} is not a JSON object, so it has no property "${property}"`, key);
  }
  const found = lookup(object, property);
  if (found === undefined) throw new KeyNotFoundError(`${where} has no property "${property}"`, key);
  return stringify(found);
}

/**
 * Every property of a value (`dataFrom.extract`, `find`): the fields of a JSON
 * object (non-string fields as JSON); any other value (plain text, a JSON
 * array or scalar) is one property named `value`.
 */
export function toProperties(text: string): Properties {
  const object = parseJsonObject(text);
  if (object === undefined) return { value: text };
  const out: Properties = {};
  for (const [k, v] of Object.entries(object)) out[k] = stringify(v);
  return out;
}

/** Binary secret bytes as text, only when they are valid UTF-8 (a Secret value is text here). */
export function utf8(bytes: Uint8Array, where: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new ProviderError(`${where} is binary and not valid UTF-8 text`);
  }
}

/** Splits into chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A `find.nameRegexp`, compiled as RE2 (linear time); an invalid one is the ManagedSecret's mistake (SpecError). */
export function compileNameRegexp(nameRegexp: string | undefined): NamePattern | undefined {
  return nameRegexp === undefined ? undefined : compileNamePattern(nameRegexp);
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function lookup(value: unknown, path: string): unknown {
  if (isObject(value)) {
    if (Object.hasOwn(value, path)) return value[path];
  } else if (Array.isArray(value)) {
    if (/^(0|[1-9]\d*)$/.test(path)) return value[Number(path)];
  } else {
    return undefined;
  }
  // Try each dot as a split point: "a.b.c" may be a → "b.c", or "a.b" → c.
  for (let dot = path.indexOf('.'); dot >= 0; dot = path.indexOf('.', dot + 1)) {
    const head = path.slice(0, dot);
    const rest = path.slice(dot + 1);
    let child: unknown;
    if (isObject(value) && Object.hasOwn(value, head)) child = value[head];
    else if (Array.isArray(value) && /^(0|[1-9]\d*)$/.test(head)) child = value[Number(head)];
    else continue;
    const found = lookup(child, rest);
    if (found !== undefined) return found;
  }
  return undefined;
}

function stringify(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
