// How IBM Cloud Secrets Manager secrets become ManagedSecret values: which
// key names which secret, and each secret type's payload as properties.
// Certificates also carry `tls.crt`, `tls.key` and `ca.crt`, so an extract
// (or a template) makes a kubernetes.io/tls Secret as it is.
import { SpecError } from '../../api/errors.js';
import type { Properties } from '../provider.js';

/** Secret ids are UUIDs. */
const SECRET_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const SECRET_TYPES = [
  'arbitrary',
  'username_password',
  'kv',
  'iam_credentials',
  'imported_cert',
  'public_cert',
  'private_cert',
  'service_credentials',
] as const;
export type SecretType = (typeof SECRET_TYPES)[number];

/** What a remoteRef.key names: a secret id, or a secret group, type and name (the API's get-by-name path). */
export type SecretLocator = { id: string } | { group: string; type: SecretType; name: string };

/**
 * `<secret id>` or `<secret group name>/<secret type>/<secret name>`. The
 * type is part of the name lookup because IBM's get-by-name
 * (`/secret_groups/{group}/secret_types/{type}/secrets/{name}`) needs it: two
 * secrets of one group may share a name if their types differ.
 */
export function parseKey(key: string): SecretLocator {
  if (SECRET_ID.test(key)) return { id: key.toLowerCase() };
  const parts = key.split('/');
  if (parts.length === 3 && parts.every((p) => p !== '')) {
    const [group, type, name] = parts as [string, string, string];
    if (!(SECRET_TYPES as readonly string[]).includes(type))
      throw new SpecError(
        `IBM Cloud Secrets Manager key "${key}": "${type}" is not a secret type (one of ${SECRET_TYPES.join(', ')})`,
      );
    return { group, type: type as SecretType, name };
  }
  throw new SpecError(
    `IBM Cloud Secrets Manager key "${key}" is neither a secret id (a UUID) nor <secret group>/<secret type>/<secret name>`,
  );
}

/** The version a ref pins: `current` (default), `previous`, or a version id. */
export function versionAlias(version: string | undefined): string {
  return version === undefined || version === '' ? 'current' : version;
}

function text(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function put(out: Properties, key: string, v: unknown): void {
  const t = text(v);
  if (t !== undefined) out[key] = t;
}

/**
 * The properties of a secret (or version) answer, by its type. A missing
 * field is left out (a certificate without an intermediate has no ca.crt).
 */
export function secretProperties(body: Record<string, unknown>): Properties {
  const type = body.secret_type;
  const out: Properties = {};
  switch (type) {
    case 'arbitrary':
      put(out, 'payload', body.payload);
      break;
    case 'username_password':
      put(out, 'username', body.username);
      put(out, 'password', body.password);
      break;
    case 'kv':
      if (typeof body.data === 'object' && body.data !== null && !Array.isArray(body.data)) {
        for (const [k, v] of Object.entries(body.data as Record<string, unknown>)) put(out, k, v);
      }
      break;
    case 'iam_credentials':
      put(out, 'api_key', body.api_key);
      put(out, 'api_key_id', body.api_key_id);
      put(out, 'service_id', body.service_id);
      break;
    case 'imported_cert':
    case 'public_cert':
    case 'private_cert': {
      put(out, 'certificate', body.certificate);
      put(out, 'private_key', body.private_key);
      put(out, 'intermediate', body.intermediate);
      put(out, 'issuing_ca', body.issuing_ca);
      const chain = Array.isArray(body.ca_chain) ? body.ca_chain.filter((c): c is string => typeof c === 'string') : [];
      if (chain.length > 0) out.ca_chain = chain.join('\n');
      // The kubernetes.io/tls keys: the chain as IBM gives it (private_cert's ca_chain, else the intermediate).
      put(out, 'tls.crt', body.certificate);
      put(out, 'tls.key', body.private_key);
      const ca = chain.length > 0 ? chain.join('\n') : (text(body.intermediate) ?? text(body.issuing_ca));
      if (ca !== undefined && ca !== '') out['ca.crt'] = ca;
      break;
    }
    case 'service_credentials':
      if (typeof body.credentials === 'object' && body.credentials !== null) {
        for (const [k, v] of Object.entries(body.credentials as Record<string, unknown>)) put(out, k, v);
      }
      break;
    default:
      break;
  }
  return out;
}

/** Properties that only mirror others (for Secrets): left out of a whole-value JSON. */
const DERIVED = new Set(['tls.crt', 'tls.key', 'ca.crt']);

/**
 * A secret's value without a property: an arbitrary secret's payload, an IAM
 * credential's API key; any other type's fields as a JSON object.
 */
export function wholeValue(type: unknown, props: Properties): string {
  if (type === 'arbitrary') return props.payload ?? '';
  if (type === 'iam_credentials') return props.api_key ?? '';
  const own = Object.fromEntries(Object.entries(props).filter(([k]) => !DERIVED.has(k)));
  return JSON.stringify(own);
}

/** Types rotation may write a new version of. */
export const WRITABLE_TYPES: ReadonlySet<string> = new Set(['arbitrary', 'username_password', 'kv']);
