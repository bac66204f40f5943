// IBM Cloud IAM access tokens for one store: an API key, or a trusted profile
// logged into with a compute-resource token (a ServiceAccount token minted by
// TokenRequest), exchanged at POST /identity/token. The token is cached and
// exchanged again before it expires (a fifth of its life, at least a minute,
// early), one exchange at a time however many reads wait for it; a 401 from an
// instance drops it, so the next call logs in again.
import { Reasons, type AnyStore, type IbmSecretsManagerProviderSpec } from '../../api/types.js';
import { raceAbort } from '../../api/abort.js';
import { ProviderConfigError, storeLabel, type CallOptions, type ProviderContext } from '../provider.js';
import { IbmUnavailableError, ibmErrorText, ibmRequest } from './http.js';

export const GRANT_APIKEY = 'urn:ibm:params:oauth:grant-type:apikey';
export const GRANT_CR_TOKEN = 'urn:ibm:params:oauth:grant-type:cr-token';
export const DEFAULT_IAM = 'https://iam.cloud.ibm.com';
export const PRIVATE_IAM = 'https://private.iam.cloud.ibm.com';
/** The audience IAM expects in a compute-resource token. */
export const DEFAULT_CR_AUDIENCES = ['iam'];
/** Lifetime asked of a minted ServiceAccount token: it is exchanged at once. */
const SA_TOKEN_SECONDS = 600;
/** The operator's own API key (ClusterSecretStores without `auth`). */
export const OPERATOR_API_KEY_ENV = 'IBMCLOUD_API_KEY';

/** What is sent to IAM: the grant's form fields (the API key or minted token inside is never logged). */
export type IamGrant = (opts: CallOptions) => Promise<URLSearchParams>;

interface CachedToken {
  accessToken: string;
  /** ms since epoch. */
  refreshAt: number;
  expiresAt: number;
}

export class IamTokenSource {
  private cached: CachedToken | undefined;
  private inflight: Promise<CachedToken> | undefined;
  /** Exchanges done (for tests and stats). */
  exchanges = 0;

  constructor(
    private readonly iamEndpoint: string,
    private readonly grant: IamGrant,
    private readonly label: string,
    private readonly timeoutMs: number,
    /** Counts and times the exchange (ProviderContext.observe: operation `IamToken`). */
    private readonly observe: <T>(operation: string, call: () => Promise<T>) => Promise<T> = (_op, call) => call(),
    private readonly now: () => number = Date.now,
  ) {}

  /** A valid access token, from the cache or a fresh exchange. */
  async token(opts: CallOptions = {}): Promise<string> {
    const cached = this.cached;
    if (cached && this.now() < cached.refreshAt) return cached.accessToken;
    // A token still valid is used while another caller refreshes it.
    if (cached && this.inflight && this.now() < cached.expiresAt) return cached.accessToken;
    // The exchange is shared: it runs without any one caller's signal, bounded by its own deadline.
    this.inflight ??= this.exchange().finally(() => {
      this.inflight = undefined;
    });
    try {
      const fresh = await raceAbort(this.inflight, opts.signal, `${this.label}: IAM token`);
      return fresh.accessToken;
    } catch (err) {
      // IAM unreachable during an early refresh: the token in hand still works until it expires.
      if (cached && this.now() < cached.expiresAt && !opts.signal?.aborted) return cached.accessToken;
      throw err;
    }
  }

  /** An instance said 401: the token is no good any more. */
  invalidate(): void {
    this.cached = undefined;
  }

  private async exchange(): Promise<CachedToken> {
    const form = await this.grant({});
    const url = `${this.iamEndpoint.replace(/\/+$/, '')}/identity/token`;
    let answer;
    try {
      answer = await this.observe('IamToken', () =>
        ibmRequest({
          method: 'POST',
          url,
          body: form,
          what: `${this.label}: IAM token exchange`,
          timeoutMs: this.timeoutMs,
        }),
      );
    } catch (err) {
      if (err instanceof IbmUnavailableError) throw err;
      // 400 (unknown API key, untrusted compute resource), 401, 403: credentials a person must fix.
      const detail = err instanceof Error ? err.message : '';
      throw new ProviderConfigError(`${detail} (IAM login failed: check the API key or the trusted profile)`, {
        reason: Reasons.AuthenticationFailed,
      });
    }
    const body = answer.body as { access_token?: unknown; expires_in?: unknown; expiration?: unknown } | undefined;
    if (typeof body?.access_token !== 'string' || body.access_token === '')
      throw new IbmUnavailableError(`${this.label}: IAM answered without an access token ${ibmErrorText(body)}`);
    const issued = this.now();
    const lifeMs =
      typeof body.expiration === 'number'
        ? body.expiration * 1000 - issued
        : typeof body.expires_in === 'number'
          ? body.expires_in * 1000
          : 3600_000;
    const early = Math.max(60_000, lifeMs / 5);
    this.exchanges += 1;
    const token: CachedToken = {
      accessToken: body.access_token,
      expiresAt: issued + lifeMs,
      refreshAt: issued + Math.max(0, lifeMs - early),
    };
    this.cached = token;
    return token;
  }
}

/**
 * The IAM grant a store's spec names. A namespaced store must name its own
 * credentials (a Secret of its namespace, or a ServiceAccount of its
 * namespace), unless the admin allows the operator's identity for them.
 */
export async function iamGrant(
  spec: IbmSecretsManagerProviderSpec,
  store: AnyStore,
  ctx: ProviderContext,
  opts: CallOptions,
): Promise<IamGrant> {
  const label = storeLabel(store);
  const namespaced = store.kind === 'SecretStore';
  const auth = spec.auth;
  const ownNamespace = (ns: string | undefined, field: string): string => {
    if (!namespaced) {
      if (!ns) throw new ProviderConfigError(`${label}: ${field}.namespace is required on a ClusterSecretStore`);
      return ns;
    }
    const storeNs = store.metadata.namespace ?? '';
    if (ns !== undefined && ns !== storeNs)
      throw new ProviderConfigError(`${label}: ${field} may only name its own namespace "${storeNs}"`);
    return storeNs;
  };
  if (auth?.apiKeySecretRef && auth.trustedProfile)
    throw new ProviderConfigError(`${label}: auth sets both apiKeySecretRef and trustedProfile; set one`);
  if (auth?.apiKeySecretRef) {
    const ref = auth.apiKeySecretRef;
    const ns = ownNamespace(ref.namespace, 'auth.apiKeySecretRef');
    // Read once at connect: the client is rebuilt when the credentials age.
    const apiKey = (await ctx.readSecretKey(ns, ref.name, ref.key, opts)).toString('utf8').trim();
    if (apiKey === '') throw new ProviderConfigError(`${label}: the API key in Secret ${ns}/${ref.name} is empty`);
    return async () => new URLSearchParams({ grant_type: GRANT_APIKEY, apikey: apiKey });
  }
  if (auth?.trustedProfile) {
    const profile = auth.trustedProfile;
    if (!profile.profileId === !profile.profileName)
      throw new ProviderConfigError(`${label}: auth.trustedProfile sets exactly one of profileId and profileName`);
    const sa = profile.serviceAccountRef;
    const ns = ownNamespace(sa.namespace, 'auth.trustedProfile.serviceAccountRef');
    const audiences = sa.audiences && sa.audiences.length > 0 ? sa.audiences : DEFAULT_CR_AUDIENCES;
    return async () => {
      // A fresh token per exchange: IAM logs in with it once.
      const crToken = await ctx.requestServiceAccountToken(ns, sa.name, audiences, SA_TOKEN_SECONDS);
      return new URLSearchParams({
        grant_type: GRANT_CR_TOKEN,
        cr_token: crToken,
        ...(profile.profileId ? { profile_id: profile.profileId } : { profile_name: profile.profileName as string }),
      });
    };
  }
  if (namespaced && !ctx.allowOperatorIdentityForNamespacedStores)
    throw new ProviderConfigError(
      `${label} has no auth and may not use the operator's identity: set apiKeySecretRef or trustedProfile ` +
        '(or the cluster admin allows it with --allow-operator-identity-for-namespaced-stores)',
    );
  const own = process.env[OPERATOR_API_KEY_ENV];
  if (!own)
    throw new ProviderConfigError(
      `${label}: no auth is set and the operator has no ${OPERATOR_API_KEY_ENV} of its own`,
    );
  return async () => new URLSearchParams({ grant_type: GRANT_APIKEY, apikey: own });
}
