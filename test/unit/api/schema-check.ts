// A small structural validator for the schemas in src/api/schemas.ts, enough to
// check examples and fixtures offline: types, required, enum, pattern, lengths,
// item and entry counts, and unknown fields (which the API server would prune
// silently). CEL rules are left to the integration tests on a real API server.
import type { JSONSchemaProps } from '../../../src/api/schemas.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeError(schema: JSONSchemaProps, value: unknown): boolean {
  switch (schema.type) {
    case 'object':
      return !isObject(value);
    case 'array':
      return !Array.isArray(value);
    case 'string':
      return typeof value !== 'string';
    case 'integer':
      return !Number.isInteger(value);
    case 'number':
      return typeof value !== 'number';
    case 'boolean':
      return typeof value !== 'boolean';
    default:
      return false;
  }
}

/** Every way `value` breaks `schema`, as `path: problem` lines; empty when it fits. */
export function validate(schema: JSONSchemaProps, value: unknown, path = ''): string[] {
  const at = path || '<root>';
  if (typeError(schema, value)) return [`${at}: expected ${schema.type}, got ${JSON.stringify(value)}`];
  const errors: string[] = [];
  if (typeof value === 'string') {
    if (schema.enum && !schema.enum.includes(value))
      errors.push(`${at}: ${value} is not one of ${schema.enum.join(', ')}`);
    if (schema.pattern && !new RegExp(schema.pattern).test(value))
      errors.push(`${at}: does not match ${schema.pattern}`);
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at}: too short`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${at}: too long`);
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(`${at}: too many items`);
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at}: too few items`);
    const items = schema.items;
    if (items) value.forEach((v, i) => errors.push(...validate(items, v, `${path}[${i}]`)));
  }
  if (isObject(value)) {
    const entries = Object.entries(value);
    if (schema.maxProperties !== undefined && entries.length > schema.maxProperties) {
      errors.push(`${at}: too many entries`);
    }
    for (const name of schema.required ?? []) {
      if (!(name in value)) errors.push(`${path ? `${path}.` : ''}${name}: required`);
    }
    const { properties, additionalProperties } = schema;
    for (const [name, v] of entries) {
      const child = properties?.[name] ?? additionalProperties;
      const childPath = path ? `${path}.${name}` : name;
      if (child) errors.push(...validate(child, v, childPath));
      // An object with neither properties nor additionalProperties (metadata) takes anything.
      else if (properties || additionalProperties) errors.push(`${childPath}: unknown field (it would be pruned)`);
    }
  }
  return errors;
}

/** The sub-schema at a path such as `spec.data[].remoteRef` (`[]` steps into items). */
export function schemaAt(schema: JSONSchemaProps, path: string): JSONSchemaProps {
  let node = schema;
  for (const step of path.split('.')) {
    const array = step.endsWith('[]');
    const name = array ? step.slice(0, -2) : step;
    const next = node.properties?.[name];
    if (!next) throw new Error(`no property ${name} on the way to ${path}`);
    node = array ? (next.items ?? {}) : next;
  }
  return node;
}

/** Visits every declared property: `visit(path, schema)` with paths like `spec.data[].secretKey`. */
export function walkProperties(
  schema: JSONSchemaProps,
  visit: (path: string, schema: JSONSchemaProps) => void,
  path = '',
): void {
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const childPath = path ? `${path}.${name}` : name;
    visit(childPath, child);
    walkProperties(child, visit, childPath);
    if (child.items) walkProperties(child.items, visit, `${childPath}[]`);
  }
}

/** The declared property paths a value sets (map entries and free-form objects are not descended into). */
export function pathsSet(schema: JSONSchemaProps, value: unknown, path = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value) && schema.items) {
    for (const item of value) pathsSet(schema.items, item, `${path}[]`, out);
  } else if (isObject(value) && schema.properties) {
    for (const [name, v] of Object.entries(value)) {
      const child = schema.properties[name];
      if (!child) continue;
      const childPath = path ? `${path}.${name}` : name;
      out.add(childPath);
      pathsSet(child, v, childPath, out);
    }
  }
  return out;
}

// Type-level helpers that tie the schemas to the TypeScript types.

/** The keys of T that are not optional. */
export type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T] & string;

type Exactly<U extends string, L extends readonly string[]> = [Exclude<U, L[number]>] extends [never]
  ? [Exclude<L[number], U>] extends [never]
    ? L
    : never
  : never;

/** `requiredKeysOf<T>()([...])` compiles only when the list names exactly T's required keys. */
export function requiredKeysOf<T>() {
  return <const L extends readonly string[]>(keys: L & Exactly<RequiredKeys<T>, L>): string[] => [...keys];
}

/** `keysOf<T>()([...])` compiles only when the list names exactly T's keys, optional ones included. */
export function keysOf<T>() {
  return <const L extends readonly string[]>(keys: L & Exactly<keyof T & string, L>): string[] => [...keys];
}

/** `membersOf<U>()([...])` compiles only when the list names exactly the members of the string union U. */
export function membersOf<U extends string>() {
  return <const L extends readonly string[]>(members: L & Exactly<U, L>): string[] => [...members];
}
