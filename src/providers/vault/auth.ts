// How a Vault store's client gets its token, and keeps it: a login per auth
// method (Kubernetes with a TokenRequest-minted ServiceAccount token, AppRole,
// a token from a Secret), renewal with auth/token/renew-self at about two
// thirds of the TTL (lazily, on the next request: no timers to leak when the
// controller drops a client), and a new login after Vault refuses the token
// (expired, revoked; VaultHttp asks lookup-self before calling invalidate).
//
// There is no fallback to the operator's own identity: every method names its
// credentials explicitly, a SecretStore's only in its own namespace (the CRD
// refuses `namespace` there, and the namespace is taken from the store here
// whatever the spec says).
import { boundedText } from '../../api/errors.js';
import type { AnyStore, SecretKeyRef, VaultAuthSpec } from '../../api/types.js';
import { ProviderConfigError, storeLabel, type CallOptions, type ProviderContext } from '../provider.js';
import { VaultPermissionError, VaultRequestError } from './errors.js';
import { encodePath, type VaultHttp, type VaultTokenSource } from './http.js';

/** What a login or a lookup tells about a token. */
export interface VaultTokenInfo {
  token: string;
  /** Seconds the token lives from now; 0: does not expire (a root token). */
  ttlSeconds: number;
  renewable: boolean;
}

/** One way of obtaining a token. */
export type VaultLogin = (opts: CallOptions) => Promise<VaultTokenInfo>;

/** Lifetime of the ServiceAccount tokens minted for Kubernetes auth (the API server's minimum is 600 s). */
export const KUBERNETES_JWT_SECONDS = 600;

/** Renew when this share of the token's TTL has passed. */
export const RENEW_AT_FRACTION = 2 / 3;

interface AuthAnswer {
  auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown } | null;
}

interface LookupAnswer {
  data?: { ttl?: unknown; renewable?: unknown } | null;
}

/** The namespace a store's reference reads from: a SecretStore's own, a ClusterSecretStore's from the ref. */
export function refNamespace(store: AnyStore, refNs: string | undefined, field: string): string {
  if (store.kind === 'SecretStore') return store.metadata.namespace ?? '';
  if (!refNs)
    throw new ProviderConfigError(`${storeLabel(store)}: ${field}.namespace is required on a ClusterSecretStore`);
  return refNs;
}

async function readText(
  ctx: ProviderContext,
  store: AnyStore,
  ref: SecretKeyRef,
  field: string,
  opts: CallOptions,
): Promise<string> {
  const ns = refNamespace(store, ref.namespace, field);
  const bytes = await ctx.readSecretKey(ns, ref.name, ref.key, opts);
  const text = bytes.toString('utf8').trim();
  if (text === '')
    throw new ProviderConfigError(`${storeLabel(store)}: Secret ${ns}/${ref.name} key "${ref.key}" is empty`);
  return text;
}

function tokenFromAuth(answer: AuthAnswer, what: string): VaultTokenInfo {
  const auth = answer.auth;
  if (!auth || typeof auth.client_token !== 'string' || auth.client_token === '') {
    throw new ProviderConfigError(`${what}: Vault answered without a token`);
  }
  return {
    token: auth.client_token,
    ttlSeconds: typeof auth.lease_duration === 'number' ? auth.lease_duration : 0,
    renewable: auth.renewable === true,
  };
}

/** A login refused by Vault is a configuration problem (wrong role, wrong secret id, a TokenReview that failed). */
function loginError(err: unknown, what: string): unknown {
  if (err instanceof VaultPermissionError) {
    return new VaultPermissionError(`${what}: Vault refused the login (permission denied)`);
  }
  if (err instanceof VaultRequestError) {
    return new ProviderConfigError(`${what}: Vault refused the login (HTTP ${err.status})`);
  }
  return err;
}

/** The login function of a store's `auth` block. */
export function vaultLogin(store: AnyStore, auth: VaultAuthSpec, ctx: ProviderContext, http: VaultHttp): VaultLogin {
  const label = storeLabel(store);
  if (auth.kubernetes) {
    const k8s = auth.kubernetes;
    const mount = k8s.mountPath ?? 'kubernetes';
    const what = `${label}: Vault Kubernetes login at auth/${mount}`;
    return async (opts) => {
      const ns = refNamespace(store, k8s.serviceAccountRef.namespace, 'auth.kubernetes.serviceAccountRef');
      const jwt = await ctx.requestServiceAccountToken(
        ns,
        k8s.serviceAccountRef.name,
        k8s.serviceAccountRef.audiences ?? [],
        KUBERNETES_JWT_SECONDS,
      );
      try {
        const answer = await http.request<AuthAnswer>('POST', `v1/auth/${encodePath(mount)}/login`, {
          ...opts,
          anonymous: true,
          body: { role: k8s.role, jwt },
          operation: 'auth.login',
        });
        return tokenFromAuth(answer, what);
      } catch (err) {
        throw loginError(err, what);
      }
    };
  }
  if (auth.appRole) {
    const app = auth.appRole;
    const mount = app.mountPath ?? 'approle';
    const what = `${label}: Vault AppRole login at auth/${mount}`;
    return async (opts) => {
      const roleId =
        app.roleId ??
        (app.roleIdSecretRef
          ? await readText(ctx, store, app.roleIdSecretRef, 'auth.appRole.roleIdSecretRef', opts)
          : undefined);
      if (roleId === undefined) throw new ProviderConfigError(`${what}: set roleId or roleIdSecretRef`);
      const secretId = await readText(ctx, store, app.secretIdSecretRef, 'auth.appRole.secretIdSecretRef', opts);
      try {
        const answer = await http.request<AuthAnswer>('POST', `v1/auth/${encodePath(mount)}/login`, {
          ...opts,
          anonymous: true,
          body: { role_id: roleId, secret_id: secretId },
          operation: 'auth.login',
        });
        return tokenFromAuth(answer, what);
      } catch (err) {
        throw loginError(err, what);
      }
    };
  }
  if (auth.tokenSecretRef) {
    const ref = auth.tokenSecretRef;
    const what = `${label}: Vault token from Secret ${ref.name}`;
    return async (opts) => {
      // Read again at every login: after a revocation, the Secret may hold a new token.
      const token = await readText(ctx, store, ref, 'auth.tokenSecretRef', opts);
      try {
        const answer = await http.request<LookupAnswer>('GET', 'v1/auth/token/lookup-self', {
          ...opts,
          token,
          operation: 'token.lookup',
        });
        const ttl = answer.data?.ttl;
        return { token, ttlSeconds: typeof ttl === 'number' ? ttl : 0, renewable: answer.data?.renewable === true };
      } catch (err) {
        throw loginError(err, what);
      }
    };
  }
  // Never the operator's own identity: a store without a method is refused.
  throw new ProviderConfigError(`${label}: spec.provider.vault.auth must set kubernetes, appRole or tokenSecretRef`);
}

interface Held {
  info: VaultTokenInfo;
  obtainedAt: number;
  /** When to renew (or log in again); Infinity for a token that does not expire. */
  renewAt: number;
  expiresAt: number;
}

/** Numbers for tests and metrics: how often the manager logged in and renewed. */
export interface TokenManagerStats {
  logins: number;
  renewals: number;
}

/**
 * The token source of one client: logs in on first use, renews when due,
 * logs in again after a refusal or when renewal cannot extend the token any
 * more (its max TTL is near). Concurrent callers share one login or renewal.
 */
export class VaultTokenManager implements VaultTokenSource {
  private held: Held | undefined;
  private pending: Promise<Held> | undefined;
  readonly stats: TokenManagerStats = { logins: 0, renewals: 0 };

  constructor(
    private http: VaultHttp,
    private login: VaultLogin,
    private readonly label: string,
    private readonly now: () => number = Date.now,
  ) {}

  async token(opts: CallOptions): Promise<string> {
    const held = this.held;
    const now = this.now();
    if (held && now < held.renewAt) return held.info.token;
    this.pending ??= (
      held && now < held.expiresAt && held.info.renewable ? this.renew(held, opts) : this.fresh(opts)
    ).finally(() => {
      this.pending = undefined;
    });
    return (await this.pending).info.token;
  }

  /**
   * A rebuilt client of the same store takes this manager over (the controller
   * rebuilds clients every few minutes): the token lives on, instead of a new
   * login each time and the old token left to expire unused in Vault.
   */
  rebind(http: VaultHttp, login: VaultLogin): void {
    this.http = http;
    this.login = login;
  }

  invalidate(token: string): void {
    if (this.held?.info.token === token) this.held = undefined;
  }

  /** The token's expiry, for tests and status; undefined before the first login. */
  expiresAt(): number | undefined {
    return this.held?.expiresAt;
  }

  private hold(info: VaultTokenInfo): Held {
    const now = this.now();
    const ttlMs = info.ttlSeconds * 1000;
    const held: Held =
      info.ttlSeconds > 0
        ? { info, obtainedAt: now, renewAt: now + ttlMs * RENEW_AT_FRACTION, expiresAt: now + ttlMs }
        : { info, obtainedAt: now, renewAt: Infinity, expiresAt: Infinity };
    this.held = held;
    return held;
  }

  private async fresh(opts: CallOptions): Promise<Held> {
    this.held = undefined;
    const info = await this.login(opts);
    this.stats.logins += 1;
    return this.hold(info);
  }

  private async renew(held: Held, opts: CallOptions): Promise<Held> {
    let answer: AuthAnswer;
    try {
      answer = await this.http.request<AuthAnswer>('POST', 'v1/auth/token/renew-self', {
        ...opts,
        token: held.info.token,
        body: {},
        operation: 'token.renew',
      });
    } catch (err) {
      // Refused (revoked) or not renewable after all: log in again.
      if (err instanceof VaultPermissionError || err instanceof VaultRequestError) return this.fresh(opts);
      // Vault unreachable: keep the token while it lives; the next request tries again.
      if (this.now() < held.expiresAt) {
        held.renewAt = Math.min(held.expiresAt, this.now() + 1000);
        return held;
      }
      throw err;
    }
    const renewed = tokenFromAuth(answer, `${this.label}: Vault token renewal`);
    this.stats.renewals += 1;
    // Near its max TTL, renewal stops extending the token: log in again rather than run it out.
    const previousTtl = (held.expiresAt - held.obtainedAt) / 1000;
    if (renewed.ttlSeconds > 0 && renewed.ttlSeconds < previousTtl / 2) return this.fresh(opts);
    return this.hold({ ...renewed, token: held.info.token });
  }
}

/** A short, value-free description of a Vault auth block for messages. */
export function describeAuth(auth: VaultAuthSpec): string {
  if (auth.kubernetes) return `kubernetes (role ${boundedText(auth.kubernetes.role, 64)})`;
  if (auth.appRole) return 'appRole';
  if (auth.tokenSecretRef) return `tokenSecretRef (Secret ${auth.tokenSecretRef.name})`;
  return 'none';
}
