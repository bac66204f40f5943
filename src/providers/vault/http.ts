// The one HTTP client every Vault call goes through (KV, auth, transit, PKI,
// leases), so each gets the same guarantees: the caller's AbortSignal and a
// per-attempt deadline, the store's request budget, X-Vault-Token and
// X-Vault-Namespace, the store's TLS, failover across `server` + `failover`
// with circuit breakers, Retry-After, a re-login behind a refused token, and
// errors in our model with no body, value or token in a message.
//
// Built on node:http / node:https rather than the bundled fetch: fetch's TLS
// (a CA bundle, a client certificate, the name checked) and connect timeout
// are set through an undici `dispatcher`, which needs the `undici` package
// (not a dependency of ours, and its bundled copy is not importable); the
// node:https Agent takes ca/cert/key/servername directly, keeps connections
// alive per client, and the socket's connect phase can be timed on its own.
import * as http from 'node:http';
import * as https from 'node:https';
import { abortError, deadline, throwIfAborted } from '../../api/abort.js';
import { SecretsyncError } from '../../api/errors.js';
import type { RequestBudget } from '../budget.js';
import { RegionalClients, regionHealth, type BreakerSettings, type RegionHealth } from '../failover.js';
import type { CallOptions, FailoverMove, ProviderContext, ProviderTimeouts, ServedRegion } from '../provider.js';
import { DEFAULT_PROVIDER_TIMEOUTS, ProviderError } from '../provider.js';
import {
  VaultFailure,
  VaultPermissionError,
  isVaultAvailabilityError,
  mapVaultAnswer,
  mapVaultNetworkError,
} from './errors.js';

/** The answers Vault gives are small; a bigger one is refused rather than buffered (a hostile or confused server). */
export const MAX_VAULT_RESPONSE_BYTES = 8 * 1024 * 1024;

/** The region every Vault target is in (status shows `vault` and the serving host). */
export const VAULT_REGION = 'vault';

/** TLS material, read from the cluster when the client is built. */
export interface VaultTlsMaterial {
  /** PEM CA bundle; absent: Node's default roots. */
  ca?: string;
  /** PEM client certificate and key. */
  cert?: string;
  key?: string;
  /** The name checked in the certificate (and sent as SNI). */
  serverName?: string;
}

/** Where the token of every authenticated request comes from (auth.ts); renewal and re-login happen behind it. */
export interface VaultTokenSource {
  /** A token to send, logging in or renewing first when due. */
  token(opts: CallOptions): Promise<string>;
  /** Vault refused this token (lookup-self said so): the next `token()` logs in again. */
  invalidate(token: string): void;
}

export interface VaultHttpOptions {
  /** `storeLabel(store)`: breakers and budgets are per store. */
  store: string;
  /** `server`, then `failover`, in order. */
  addresses: string[];
  /** X-Vault-Namespace on every request. */
  namespace?: string;
  tls?: VaultTlsMaterial;
  timeouts?: ProviderTimeouts;
  /** The store's request budget; every HTTP attempt takes one token. */
  budget?: RequestBudget;
  breaker: BreakerSettings;
  /** Metrics (ProviderContext.observe); operation names such as `kv.read`. */
  observe?: ProviderContext['observe'];
  onFailover?: (move: FailoverMove) => void;
  /** For tests: a private breaker registry. */
  health?: RegionHealth;
  /** Metric provider name. Default `vault`. */
  provider?: string;
}

export type VaultMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'LIST';

export interface VaultRequestOptions extends CallOptions {
  /** JSON request body. */
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  /** Send no token (logins, sys/health). */
  anonymous?: boolean;
  /** Use this token instead of the token source's (a login's own renew/lookup). */
  token?: string;
  /** Non-2xx statuses answered as success with their body (sys/health: 429, 472, 473, 501, 503). */
  acceptStatus?: readonly number[];
  /** Metric operation name. Default the method. */
  operation?: string;
  /** What a not-found message names. Default the path. */
  key?: string;
  /** Content type of the body. Default application/json (PATCH on KV v2 wants application/merge-patch+json). */
  contentType?: string;
  /** Only the primary address (writes that must not land on a DR secondary). Default false. */
  primaryOnly?: boolean;
}

/** Vault's path for a request: `v1/...`, with or without a leading slash, no `..` segments. */
export function normalisePath(path: string): string {
  const trimmed = path.replace(/^\/+/, '');
  const withPrefix = trimmed.startsWith('v1/') ? trimmed : `v1/${trimmed}`;
  if (withPrefix.split('/').some((s) => s === '..' || s === '.')) {
    throw new SecretsyncError('InvalidSpec', 'terminal', `Vault path "${path}" has a "." or ".." segment`);
  }
  return withPrefix;
}

/** Percent-encodes each segment of a path inside a mount (`app/db name` → `app/db%20name`), keeping the slashes. */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

interface Target {
  base: URL;
  agent: http.Agent;
}

/**
 * The client. One per store client; the breakers and the active address live
 * in the process-wide registry (../failover.ts), so a rebuilt client keeps
 * knowing which address is down.
 */
export class VaultHttp {
  /** Set by the auth layer after construction (logins go through this client, anonymously). */
  tokens: VaultTokenSource | undefined;
  private readonly regional: RegionalClients<Target>;
  private readonly timeouts: ProviderTimeouts;
  private readonly provider: string;

  constructor(private readonly options: VaultHttpOptions) {
    if (options.addresses.length === 0) throw new Error('VaultHttp needs at least one address');
    this.timeouts = options.timeouts ?? DEFAULT_PROVIDER_TIMEOUTS;
    this.provider = options.provider ?? 'vault';
    const targets = options.addresses.map((address) => {
      const base = new URL(address);
      const agent =
        base.protocol === 'https:'
          ? new https.Agent({
              keepAlive: true,
              maxSockets: 32,
              ...(options.tls?.ca !== undefined ? { ca: options.tls.ca } : {}),
              ...(options.tls?.cert !== undefined ? { cert: options.tls.cert } : {}),
              ...(options.tls?.key !== undefined ? { key: options.tls.key } : {}),
              ...(options.tls?.serverName !== undefined ? { servername: options.tls.serverName } : {}),
            })
          : new http.Agent({ keepAlive: true, maxSockets: 32 });
      return { target: { region: VAULT_REGION, endpoint: address }, client: { base, agent } };
    });
    this.regional = new RegionalClients(targets, {
      store: options.store,
      provider: this.provider,
      settings: options.breaker,
      isAvailable: isVaultAvailabilityError,
      ...(options.health ? { health: options.health } : {}),
      ...(options.onFailover ? { onFailover: options.onFailover } : {}),
    });
  }

  /** The address that answered the latest request (region `vault`, endpoint its host); undefined without failover. */
  servedRegion(): ServedRegion | undefined {
    return this.regional.servedRegion();
  }

  /**
   * One Vault API call. Throws our errors: KeyNotFoundError (404),
   * VaultPermissionError (403, after a re-login when the token itself was
   * refused), VaultSealedError, ProviderError (network, 5xx, 429 with
   * Retry-After), VaultRequestError (other 4xx), DeadlineError (aborted).
   */
  async request<T>(method: VaultMethod, path: string, opts: VaultRequestOptions = {}): Promise<T> {
    const vaultPath = normalisePath(path);
    if (opts.anonymous || opts.token !== undefined || !this.tokens) {
      return this.send<T>(method, vaultPath, opts, opts.anonymous ? undefined : opts.token);
    }
    const token = await this.tokens.token(opts);
    try {
      return await this.send<T>(method, vaultPath, opts, token);
    } catch (err) {
      if (!(err instanceof VaultPermissionError)) throw err;
      // 403 is both "no policy allows this" and "this token is no longer valid": ask Vault which.
      if (!(await this.tokenRefused(token, opts))) throw err;
      this.tokens.invalidate(token);
      const fresh = await this.tokens.token(opts);
      return this.send<T>(method, vaultPath, opts, fresh);
    }
  }

  /** Whether Vault refuses the token itself (lookup-self denied), not just this request. */
  private async tokenRefused(token: string, opts: CallOptions): Promise<boolean> {
    try {
      await this.send('GET', 'v1/auth/token/lookup-self', { ...opts, operation: 'token.lookup' }, token);
      return false;
    } catch (err) {
      if (err instanceof VaultPermissionError) return true;
      throw err;
    }
  }

  private async send<T>(
    method: VaultMethod,
    path: string,
    opts: VaultRequestOptions,
    token: string | undefined,
  ): Promise<T> {
    const operation = opts.operation ?? method.toLowerCase();
    const call = (target: Target): Promise<T> => {
      const what = `Vault ${method} ${path} (${target.base.host})`;
      const exchange = () => this.once<T>(target, method, path, opts, token, what);
      return (async () => {
        // The wait for the budget is not the request's latency: metered from when the request leaves.
        await this.options.budget?.take(opts.signal, opts.tenant);
        throwIfAborted(opts.signal, what);
        return this.options.observe ? this.options.observe(operation, exchange, VAULT_REGION) : exchange();
      })();
    };
    if (opts.primaryOnly) {
      const primary = this.regional.primary;
      return call(primary.client);
    }
    return this.regional.run((target) => call(target), undefined, opts.signal);
  }

  /** One HTTP exchange with one address, bounded by the request deadline and the caller's signal. */
  private once<T>(
    target: Target,
    method: VaultMethod,
    path: string,
    opts: VaultRequestOptions,
    token: string | undefined,
    what: string,
  ): Promise<T> {
    const url = new URL(path, target.base.href.endsWith('/') ? target.base.href : `${target.base.href}/`);
    for (const [name, value] of Object.entries(opts.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    // LIST is sent as `GET ?list=true`, which Vault documents as the same: proxies and HTTP parsers that know no LIST pass it.
    if (method === 'LIST') url.searchParams.set('list', 'true');
    const wireMethod = method === 'LIST' ? 'GET' : method;
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (token !== undefined) headers['x-vault-token'] = token;
    if (this.options.namespace !== undefined) headers['x-vault-namespace'] = this.options.namespace;
    if (payload) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    const limit = deadline(this.timeouts.requestMs, opts.signal);
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        limit.dispose();
        fn();
      };
      const fail = (err: unknown) =>
        finish(() => {
          // Cancelled or past the deadline: the caller's signal says why; our own deadline is a timeout of this address.
          if (opts.signal?.aborted) {
            reject(abortError(opts.signal, what));
            return;
          }
          if (limit.signal.aborted) {
            reject(
              mapVaultNetworkError(
                Object.assign(new Error('request timed out'), { code: 'ERR_REQUEST_TIMEOUT' }),
                what,
              ),
            );
            return;
          }
          reject(mapVaultNetworkError(err, what));
        });
      const req = transport.request(
        url,
        { method: wireMethod, headers, agent: target.agent, signal: limit.signal },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_VAULT_RESPONSE_BYTES) {
              res.destroy();
              finish(() =>
                reject(
                  mapVaultAnswer(
                    { status: 502, body: undefined },
                    `${what}: answer larger than ${MAX_VAULT_RESPONSE_BYTES} bytes`,
                    opts.key ?? path,
                  ),
                ),
              );
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', fail);
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = text.length > 0 ? JSON.parse(text) : undefined;
            } catch {
              body = undefined;
              if (status >= 200 && status < 300) {
                finish(() =>
                  reject(
                    new ProviderError(`${what}: an answer that is not JSON (HTTP ${status}, body not shown)`, {
                      cause: new VaultFailure('not JSON', status, false),
                    }),
                  ),
                );
                return;
              }
            }
            if ((status >= 200 && status < 300) || opts.acceptStatus?.includes(status)) {
              finish(() => resolve(body as T));
              return;
            }
            const retryAfter = res.headers['retry-after'];
            finish(() =>
              reject(
                mapVaultAnswer(
                  { status, body, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) },
                  what,
                  opts.key ?? path,
                ),
              ),
            );
          });
        },
      );
      req.on('error', fail);
      // The connect phase (TCP and TLS) has its own, shorter deadline.
      req.on('socket', (socket) => {
        const connectEvent = url.protocol === 'https:' ? 'secureConnect' : 'connect';
        if (!(socket as { connecting?: boolean }).connecting && !(socket as { pending?: boolean }).pending) return;
        const timer = setTimeout(() => {
          req.destroy(Object.assign(new Error('connect timed out'), { code: 'ERR_CONNECT_TIMEOUT' }));
        }, this.timeouts.connectMs);
        timer.unref();
        socket.once(connectEvent, () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.end(payload);
    });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    for (const r of this.regional.regions) r.client.agent.destroy();
  }
}

/** The process-wide breaker registry, re-exported for the provider's stats and forgetStore. */
export { regionHealth };
