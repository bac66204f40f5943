// Where the API server is and how to authenticate to it.
//
// client-node's KubeConfig is the reference reader, but importing it loads the
// whole generated Kubernetes API (about 75 MiB of RSS and 0.4 s of start-up)
// in a process that only needs a URL, a CA and a token. The two forms an
// operator meets in practice, the in-cluster ServiceAccount and a kubeconfig
// with a token or client certificate, are read here; anything else (exec
// plugins, auth providers, basic auth, proxies, impersonation, merged
// KUBECONFIG lists) is handed to client-node, loaded only then.
import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isScalar, parseDocument, visit } from 'yaml';
import { errorMessage } from '../observability/logger.js';
import { boundedText } from '../api/errors.js';

/** What KubeClient needs; client-node's KubeConfig has the same shape. */
export interface KubeAuth {
  getCurrentCluster(): { server: string } | null;
  /** The kubeconfig context in use; empty in a cluster. */
  getCurrentContext(): string;
  /** Sets CA, client certificate, TLS checks and the Authorization header; called again to pick up rotated tokens. */
  applyToHTTPSOptions(options: RequestOptions): Promise<void>;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

interface Connection {
  server: string;
  context?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  /** Re-read on every refresh: projected ServiceAccount tokens rotate on disk. */
  tokenFile?: string;
  skipTlsVerify?: boolean;
  tlsServerName?: string;
}

class StaticKubeAuth implements KubeAuth {
  constructor(private readonly conn: Connection) {}

  getCurrentCluster(): { server: string } {
    return { server: this.conn.server };
  }

  getCurrentContext(): string {
    return this.conn.context ?? '';
  }

  applyToHTTPSOptions(options: RequestOptions): Promise<void> {
    const { ca, cert, key, token, tokenFile, skipTlsVerify, tlsServerName } = this.conn;
    if (ca) options.ca = ca;
    if (cert) options.cert = cert;
    if (key) options.key = key;
    if (tlsServerName) options.servername = tlsServerName;
    options.rejectUnauthorized = !skipTlsVerify;
    const bearer = tokenFile ? readFileSync(tokenFile, 'utf8').trim() : token;
    if (bearer) options.headers = { ...(options.headers as object | undefined), authorization: `Bearer ${bearer}` };
    return Promise.resolve();
  }
}

export interface LoadOptions {
  /** Where the in-cluster ServiceAccount files are (tests point this elsewhere). */
  serviceAccountDir?: string;
  env?: NodeJS.ProcessEnv;
  home?: string;
}

/**
 * Loads `path`, else $KUBECONFIG, else ~/.kube/config, else the in-cluster
 * ServiceAccount: the order kubectl and client-node use.
 */
export async function loadKubeConfig(path?: string, opts: LoadOptions = {}): Promise<KubeAuth> {
  const env = opts.env ?? process.env;
  const homeConfig = join(opts.home ?? homedir(), '.kube', 'config');
  const candidate =
    path ??
    (env.KUBECONFIG && env.KUBECONFIG.length > 0 ? env.KUBECONFIG : undefined) ??
    (existsSync(homeConfig) ? homeConfig : undefined);
  if (candidate !== undefined) {
    // A KUBECONFIG list is merged by client-node's rules.
    if (path === undefined && candidate.includes(':')) return clientNodeFallback((kc) => kc.loadFromDefault());
    let text: string;
    try {
      text = readFileSync(candidate, 'utf8');
    } catch (err) {
      throw new Error(`cannot read kubeconfig ${candidate}: ${errorMessage(err)}`);
    }
    return kubeConfigFromString(text, {
      baseDir: dirname(resolve(candidate)),
      fallback: () => clientNodeFallback((kc) => kc.loadFromFile(candidate)),
    });
  }
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (host && port && existsSync(join(saDir, 'token'))) {
    const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const caFile = join(saDir, 'ca.crt');
    return new StaticKubeAuth({
      server,
      ca: existsSync(caFile) ? readFileSync(caFile) : undefined,
      tokenFile: join(saDir, 'token'),
    });
  }
  throw new Error('no Kubernetes cluster configured (use --kubeconfig, KUBECONFIG, or run in a cluster)');
}

type Yaml = Record<string, unknown>;
const obj = (v: unknown): Yaml => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Yaml) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const named = (list: unknown, name: string | undefined): Yaml | undefined =>
  Array.isArray(list) ? (list.map(obj).find((e) => e.name === name) as Yaml | undefined) : undefined;

/** Why a kubeconfig cannot be used; `problem` says which kind of reason, for callers that word it their own way. */
export class KubeconfigError extends Error {
  constructor(
    readonly problem: 'invalid' | 'no-cluster' | 'unsafe',
    message: string,
    /** With `unsafe`: what the kubeconfig would make this process do. */
    readonly parts: string[] = [],
  ) {
    super(message);
    this.name = 'KubeconfigError';
  }
}

/**
 * Largest kubeconfig read from a Secret (`embeddedOnly`). One cluster's embedded
 * token or client certificate and CA take a few KiB. YAML's parser spends about
 * 5 µs a character on deeply nested flow collections (256 KiB of `[`: 1.3 s of
 * blocked event loop, measured), on every replication pass while it fails.
 */
export const MAX_EMBEDDED_KUBECONFIG_BYTES = 64 * 1024;

/** Keys of the kubeconfig shown in a refusal: a few, each a bounded line (the author chose them). */
function shownKeys(keys: string[]): string[] {
  const shown = keys.slice(0, 5).map((k) => boundedText(k, 60));
  return keys.length > shown.length ? [...shown, `${keys.length - shown.length} more`] : shown;
}

export interface FromStringOptions {
  /** Relative file paths resolve against this directory (default: the working directory). */
  baseDir?: string;
  /** For auth this reader does not handle: defaults to client-node loading the text. */
  fallback?: () => Promise<KubeAuth>;
  /**
   * Refuse anything that would make this process run a command or read one of
   * its own files (a kubeconfig from a Secret: its author must get neither).
   */
  embeddedOnly?: boolean;
}

/**
 * The YAML document as plain data, refusing what no kubeconfig holds and the
 * parser would spend minutes on. Measured on the `yaml` package:
 * - a key that is itself a collection (`? ? ? …`): turning it into a plain
 *   object's key stringifies it, at every level again: 1 KiB of `? ` took 64 s;
 * - uniqueness checks of keys compare each key with every earlier key of its
 *   map (20,000 keys: 3 s; 50,000: minutes), so they are off: a repeated key is
 *   harmless here, the last one counts and every check reads the object used;
 * - warnings are printed to stderr with the line they are about (`token: !x…`,
 *   an unknown tag, printed the token), so only errors are kept, and thrown;
 * - each error is made "pretty" with the text around it, which on one long
 *   line is quadratic (64 KiB of `&a `, 21,846 errors: 1.5 s), and its text is
 *   never shown here anyway.
 */
function readYaml(text: string): unknown {
  const document = parseDocument(text, { uniqueKeys: false, logLevel: 'error', prettyErrors: false });
  if (document.errors.length > 0) throw new Error('not valid YAML');
  visit(document, {
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key)) throw new Error('a mapping key is not a plain value');
    },
  });
  return document.toJS();
}

/** Reads a kubeconfig document (a file's text, or one held in a Secret). */
export async function kubeConfigFromString(text: string, opts: FromStringOptions = {}): Promise<KubeAuth> {
  if (opts.embeddedOnly && Buffer.byteLength(text, 'utf8') > MAX_EMBEDDED_KUBECONFIG_BYTES)
    throw new KubeconfigError('invalid', `the kubeconfig is larger than ${MAX_EMBEDDED_KUBECONFIG_BYTES} bytes`);
  let doc: Yaml;
  try {
    doc = obj(readYaml(text));
  } catch {
    // The parser's message may quote the document.
    throw new KubeconfigError('invalid', 'the kubeconfig is not valid YAML');
  }
  const contextName = str(doc['current-context']);
  const context = obj(named(doc.contexts, contextName)?.context);
  const cluster = obj(named(doc.clusters, str(context.cluster))?.cluster);
  const user = obj(named(doc.users, str(context.user))?.user);
  const server = str(cluster.server);
  if (!contextName || !server)
    throw new KubeconfigError(
      'no-cluster',
      'the kubeconfig has no current context with a cluster server (set current-context)',
    );
  if (opts.embeddedOnly) {
    const parts: string[] = [];
    if (user.exec !== undefined) parts.push('an exec credential plugin');
    if (user['auth-provider'] !== undefined) parts.push('an auth-provider');
    if (user['client-certificate'] !== undefined || user['client-key'] !== undefined)
      parts.push('client certificate files');
    if (user.tokenFile !== undefined) parts.push('a token file');
    if (cluster['certificate-authority'] !== undefined) parts.push('a CA file');
    if (parts.length > 0) throw new KubeconfigError('unsafe', `the kubeconfig uses ${parts.join(', ')}`, parts);
  }
  const handled = new Set([
    'token',
    'tokenFile',
    'client-certificate',
    'client-certificate-data',
    'client-key',
    'client-key-data',
  ]);
  const needsClientNode = Object.keys(user).some((k) => !handled.has(k)) || cluster['proxy-url'] !== undefined;
  if (needsClientNode) {
    if (opts.embeddedOnly) {
      const parts = shownKeys(Object.keys(user).filter((k) => !handled.has(k)));
      // A proxy alone leaves no user key to name: without this the refusal would read "uses : …".
      if (cluster['proxy-url'] !== undefined) parts.push('a proxy-url');
      throw new KubeconfigError(
        'unsafe',
        'the kubeconfig uses settings beyond an embedded token or client certificate',
        parts,
      );
    }
    return (opts.fallback ?? (() => clientNodeFallback((kc) => kc.loadFromString(text))))();
  }
  const baseDir = opts.baseDir ?? process.cwd();
  const file = (p: unknown): Buffer | undefined => {
    const s = str(p);
    return s === undefined ? undefined : readFileSync(isAbsolute(s) ? s : join(baseDir, s));
  };
  const data = (d: unknown): Buffer | undefined => {
    const s = str(d);
    return s === undefined ? undefined : Buffer.from(s, 'base64');
  };
  const tokenFile = str(user.tokenFile);
  return new StaticKubeAuth({
    server,
    context: contextName,
    ca: data(cluster['certificate-authority-data']) ?? file(cluster['certificate-authority']),
    cert: data(user['client-certificate-data']) ?? file(user['client-certificate']),
    key: data(user['client-key-data']) ?? file(user['client-key']),
    token: str(user.token),
    tokenFile: tokenFile === undefined ? undefined : isAbsolute(tokenFile) ? tokenFile : join(baseDir, tokenFile),
    skipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: str(cluster['tls-server-name']),
  });
}

/** client-node's reader, imported only when a kubeconfig needs it. */
async function clientNodeFallback(load: (kc: import('@kubernetes/client-node').KubeConfig) => void): Promise<KubeAuth> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  load(kc);
  if (!kc.getCurrentCluster())
    throw new Error('no Kubernetes cluster configured (use --kubeconfig, KUBECONFIG, or run in a cluster)');
  return kc;
}
