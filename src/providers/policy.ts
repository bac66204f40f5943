// What a namespaced SecretStore may reach. Anyone who can create a SecretStore
// in a namespace could otherwise point the operator at any URL (an internal
// service, a metadata endpoint, a host that logs the signed requests) or at
// any directory of the operator's filesystem. The cluster admin allows custom
// endpoints with --allowed-endpoints and a directory with --local-store-root,
// in which each namespace has its own directory <root>/<namespace> (a store of
// namespace A pointed at B's directory could not decrypt B's entries, but it
// could list their names, hold their locks and write beside them);
// ClusterSecretStores are written by cluster admins and are not limited.
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { AnyStore } from '../api/types.js';
import { boundedText } from '../api/errors.js';
import { throwIfAborted } from '../api/abort.js';
import { ProviderConfigError, StorePolicyError, storeLabel, type CallOptions, type StorePolicy } from './provider.js';

/** The StorePolicyError reasons. */
export const PolicyReasons = {
  /** A namespaced store names an endpoint outside --allowed-endpoints. */
  EndpointNotAllowed: 'EndpointNotAllowed',
  /** A namespaced local store's path is outside <--local-store-root>/<its namespace> (or there is no root). */
  PathNotAllowed: 'PathNotAllowed',
} as const;

/** Nothing custom: what a caller that passed no policy gets (the type requires one; this is the safe side). */
export const STRICTEST_POLICY: StorePolicy = Object.freeze({ allowedEndpoints: [], localStoreRoot: undefined });

type EndpointRule =
  /** `https://host[:port][/path]`: scheme, host and port equal, the path a prefix at a `/` boundary. */
  | { kind: 'prefix'; protocol: string; hostname: string; port: string; path: string }
  /** `[scheme://]*.suffix`: hosts under the suffix (not the suffix itself), any port; https unless a scheme is given. */
  | { kind: 'suffix'; protocol: string; suffix: string };

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };
const SUFFIX_RULE = /^(?:(https?):\/\/)?\*\.([^/:?#@*]+)$/i;

/**
 * One --allowed-endpoints entry, normalised by the WHATWG URL parser (case,
 * default ports, `.`/`..` and `%2e` path segments, IDN). Throws an Error that
 * says what is wrong with the entry.
 */
export function parseEndpointRule(text: string): EndpointRule {
  const entry = text.trim();
  const suffix = SUFFIX_RULE.exec(entry);
  if (suffix) {
    const protocol = `${(suffix[1] ?? 'https').toLowerCase()}:`;
    const host = suffix[2] ?? '';
    let parsed: URL;
    try {
      parsed = new URL(`${protocol}//x.${host}`);
    } catch {
      throw new Error(`allowed endpoint "${entry}": "*.${host}" is not a host suffix`);
    }
    return { kind: 'suffix', protocol, suffix: parsed.hostname.slice(2) };
  }
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    throw new Error(
      `allowed endpoint "${entry}" is neither a URL prefix (https://host[:port][/path]) nor a host suffix (*.example.com)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`allowed endpoint "${entry}": only http and https URLs`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new Error(`allowed endpoint "${entry}": no user info, query or fragment`);
  }
  if (url.hostname === '') throw new Error(`allowed endpoint "${entry}" has no host`);
  return {
    kind: 'prefix',
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port || (DEFAULT_PORTS[url.protocol] ?? ''),
    path: trimSlash(url.pathname),
  };
}

/** The --allowed-endpoints flag: a comma-separated list, each entry checked (a bad one stops the operator at start). */
export function parseAllowedEndpoints(list: string): string[] {
  const entries = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const entry of entries) parseEndpointRule(entry);
  return entries;
}

/** Whether an endpoint URL is covered by one of the entries. URLs with user info, a query or a fragment never are. */
export function endpointAllowed(endpoint: string, allowed: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.username || url.password || url.search || url.hash) return false;
  const port = url.port || (DEFAULT_PORTS[url.protocol] ?? '');
  const path = trimSlash(url.pathname);
  for (const entry of allowed) {
    let rule: EndpointRule;
    try {
      rule = parseEndpointRule(entry);
    } catch {
      continue;
    }
    if (rule.protocol !== url.protocol) continue;
    if (rule.kind === 'suffix') {
      if (url.hostname.length > rule.suffix.length + 1 && url.hostname.endsWith(`.${rule.suffix}`)) return true;
      continue;
    }
    if (rule.hostname !== url.hostname || rule.port !== port) continue;
    if (rule.path === '' || path === rule.path || path.startsWith(`${rule.path}/`)) return true;
  }
  return false;
}

/** One URL a store's spec names, with the field that names it. */
export interface NamedEndpoint {
  /** `spec.provider.awsSecretsManager.failover[0].endpoint`. */
  field: string;
  endpoint: string;
}

/**
 * Every endpoint a store's spec names: each non-empty string under a field
 * called `endpoint`, anywhere in `spec.provider` (the block's own, its
 * `failover` entries, `decrypt.kms` and its failover entries; STS is asked at
 * the block's endpoint). Found by walking the spec, so an endpoint field added
 * later is checked without anyone remembering to list it here; Vault's
 * `server` and `failover` addresses are listed explicitly.
 */
export function storeEndpoints(store: AnyStore): NamedEndpoint[] {
  const out: NamedEndpoint[] = [];
  const walk = (value: unknown, path: string, depth: number): void => {
    if (depth > 10 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, `${path}[${i}]`, depth + 1));
      return;
    }
    for (const [key, child] of Object.entries(value)) {
      if (key === 'endpoint' && typeof child === 'string') {
        if (child !== '') out.push({ field: `${path}.endpoint`, endpoint: child });
        continue;
      }
      walk(child, `${path}.${key}`, depth + 1);
    }
  };
  walk(store.spec.provider, 'spec.provider', 0);
  // Vault names its addresses `server` and `failover` (it has no public endpoint of its own).
  const vault = store.spec.provider.vault;
  if (vault) {
    if (typeof vault.server === 'string' && vault.server !== '')
      out.push({ field: 'spec.provider.vault.server', endpoint: vault.server });
    (Array.isArray(vault.failover) ? vault.failover : []).forEach((address, i) => {
      if (typeof address === 'string' && address !== '')
        out.push({ field: `spec.provider.vault.failover[${i}]`, endpoint: address });
    });
  }
  return out;
}

/** An endpoint as a message may show it: scheme, host, port and path, never user info. */
export function printableEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return boundedText(`${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`, 120);
  } catch {
    // Not a URL: shown only when it cannot carry user info.
    return endpoint.includes('@') ? '(not a valid URL)' : boundedText(endpoint, 120);
  }
}

/** Throws StorePolicyError (EndpointNotAllowed) for the first endpoint of a namespaced store outside the allowlist. */
export function checkStoreEndpoints(store: AnyStore, policy: StorePolicy | undefined): void {
  if (store.kind === 'ClusterSecretStore') return;
  const allowed = (policy ?? STRICTEST_POLICY).allowedEndpoints;
  for (const { field, endpoint } of storeEndpoints(store)) {
    if (endpointAllowed(endpoint, allowed)) continue;
    const hint =
      allowed.length === 0
        ? 'namespaced stores may only use the providers’ own endpoints (the operator runs without --allowed-endpoints)'
        : 'it is not covered by the operator’s --allowed-endpoints';
    throw new StorePolicyError(
      `${storeLabel(store)}: ${field} "${printableEndpoint(endpoint)}" is not allowed: ${hint}`,
      PolicyReasons.EndpointNotAllowed,
    );
  }
}

/**
 * The directory a local store may be opened at: a ClusterSecretStore's path
 * as written; a SecretStore's only inside its namespace's directory of
 * --local-store-root (`<root>/<namespace>`), checked on the path as written
 * (`..`) and again on the real path (symbolic links), which is what is
 * returned and opened. A directory that does not exist (yet: a volume that did
 * not mount) is resolved through its nearest existing parent; the store then
 * reports it missing as it always has. Throws StorePolicyError
 * (PathNotAllowed) outside the namespace's directory or without a root.
 */
export async function allowedLocalPath(
  store: AnyStore,
  path: string,
  policy: StorePolicy | undefined,
  opts: CallOptions = {},
): Promise<string> {
  if (store.kind === 'ClusterSecretStore') return path;
  const label = storeLabel(store);
  const root = (policy ?? STRICTEST_POLICY).localStoreRoot;
  const refuse = (why: string) =>
    new StorePolicyError(
      `${label}: spec.provider.local.path "${path}" is not allowed: ${why}`,
      PolicyReasons.PathNotAllowed,
    );
  if (root === undefined || root === '') {
    throw refuse('namespaced local stores are off (the operator runs without --local-store-root)');
  }
  if (!isAbsolute(path)) throw new ProviderConfigError(`${label}: spec.provider.local.path must be an absolute path`);
  const namespace = store.metadata.namespace ?? '';
  // A namespace name is a DNS label: never empty, `.`, `..` or anything with a `/` (checked anyway: the name is the boundary).
  if (namespace === '' || namespace === '.' || namespace === '..' || namespace.includes('/') || namespace.includes(sep))
    throw refuse('the store has no usable namespace');
  const rootAbs = resolve(root);
  const own = join(rootAbs, namespace);
  const wanted = resolve(path);
  if (!inside(own, wanted))
    throw refuse(`it is outside ${own}, the namespace's directory of ${rootAbs} (--local-store-root)`);
  throwIfAborted(opts.signal, `${label}: checking spec.provider.local.path`);
  const rootReal = await realpath(rootAbs).catch(() => rootAbs);
  const real = await realPathOfNearest(wanted);
  if (!inside(join(rootReal, namespace), real))
    throw refuse(`it leads outside ${own}, the namespace's directory, through a symbolic link`);
  return real;
}

/** The real path of `path`, or of its nearest existing parent with the rest appended (as written, after resolve). */
async function realPathOfNearest(path: string): Promise<string> {
  const rest: string[] = [];
  let current = path;
  for (;;) {
    try {
      return join(await realpath(current), ...rest.reverse());
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const parent = dirname(current);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) throw err;
      rest.push(basename(current));
      current = parent;
    }
  }
}

/** The whole check for one store: its endpoints, and its local path. */
export async function validateStorePolicy(
  store: AnyStore,
  policy: StorePolicy | undefined,
  opts: CallOptions = {},
): Promise<void> {
  if (store.kind === 'ClusterSecretStore') return;
  checkStoreEndpoints(store, policy);
  const local = store.spec.provider.local;
  if (local && typeof local.path === 'string') await allowedLocalPath(store, local.path, policy, opts);
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || !(rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel));
}

function trimSlash(path: string): string {
  return path.replace(/\/+$/, '');
}
