// The `vault` provider: HashiCorp Vault's KV engine (v1 and v2) as a store,
// reached through one HTTP client (http.ts) with the store's TLS, token
// (auth.ts), request budget and failover across addresses. Other Vault
// features (transit decryption, issued certificates and leases) build on
// `connectVault`, which hands out the same client.
import type { AnyStore, FindSpec, RemoteRef, VaultProviderSpec } from '../../api/types.js';
import { raceAbort } from '../../api/abort.js';
import { breakerSettings } from '../failover.js';
import { storeLifecycle } from '../aws/lifecycle.js';
import { storeBudgets } from '../budget.js';
import { validateStorePolicy } from '../policy.js';
import {
  ProviderConfigError,
  storeLabel,
  type CallOptions,
  type CiphertextBinding,
  type FindOptions,
  type IssueRequest,
  type IssuedCredential,
  type LeaseRenewal,
  type Properties,
  type Provider,
  type ProviderClient,
  type ProviderContext,
  type PutValueOptions,
  type ServedRegion,
  type StorePolicy,
  type WriteRef,
} from '../provider.js';
import { VaultTokenManager, refNamespace, vaultLogin, type VaultLogin } from './auth.js';
import { VaultSealedError } from './errors.js';
import { VaultHttp, type VaultTlsMaterial } from './http.js';
import { VaultIssuer } from './issue.js';
import { VaultKv } from './kv.js';
import { TransitDecryptor, TransitKey, httpFailureOf, httpTransitApi } from './transit.js';

/** What `connectVault` builds for a store: the HTTP client with its token source, and the spec it was built from. */
export interface VaultConnection {
  spec: VaultProviderSpec;
  http: VaultHttp;
  tokens: VaultTokenManager;
  label: string;
}

/** The store's `spec.provider.vault`, or a ProviderConfigError. */
export function vaultSpecOf(store: AnyStore): VaultProviderSpec {
  const spec = store.spec.provider.vault;
  if (!spec) throw new ProviderConfigError(`${storeLabel(store)} has no spec.provider.vault`);
  return spec;
}

/** The store's TLS material, read from the cluster (the store's own namespace for a SecretStore). */
async function tlsMaterial(
  store: AnyStore,
  spec: VaultProviderSpec,
  ctx: ProviderContext,
  opts: CallOptions,
): Promise<VaultTlsMaterial> {
  const tls = spec.tls;
  const out: VaultTlsMaterial = {};
  if (!tls) return out;
  if (tls.serverName !== undefined) out.serverName = tls.serverName;
  const ca = tls.caProvider;
  if (ca) {
    const ns = refNamespace(store, ca.namespace, 'tls.caProvider');
    if (ca.type === 'ConfigMap') {
      if (!ctx.readConfigMapKey) {
        throw new ProviderConfigError(`${storeLabel(store)}: tls.caProvider of type ConfigMap cannot be read here`);
      }
      out.ca = await ctx.readConfigMapKey(ns, ca.name, ca.key, opts);
    } else {
      out.ca = (await ctx.readSecretKey(ns, ca.name, ca.key, opts)).toString('utf8');
    }
  }
  const client = tls.clientCertSecretRef;
  if (client) {
    const ns = refNamespace(store, client.namespace, 'tls.clientCertSecretRef');
    out.cert = (await ctx.readSecretKey(ns, client.name, 'tls.crt', opts)).toString('utf8');
    out.key = (await ctx.readSecretKey(ns, client.name, 'tls.key', opts)).toString('utf8');
  }
  return out;
}

/**
 * Builds the HTTP client and token source of a Vault store (policy checked
 * first). Exported for the other Vault features (transit, issued credentials):
 * they share the store's budget, breakers, TLS and token logic this way.
 */
export async function connectVault(
  store: AnyStore,
  ctx: ProviderContext,
  opts: CallOptions = {},
): Promise<VaultConnection> {
  const label = storeLabel(store);
  await vaultProvider.validateStore(store, ctx.policy, opts);
  const spec = vaultSpecOf(store);
  const tls = await raceAbort(tlsMaterial(store, spec, ctx, opts), opts.signal, label);
  const http = new VaultHttp({
    store: label,
    addresses: [spec.server, ...(spec.failover ?? [])],
    ...(spec.namespace !== undefined ? { namespace: spec.namespace } : {}),
    tls,
    ...(ctx.timeouts ? { timeouts: ctx.timeouts } : {}),
    budget: storeBudgets.for(store, spec.requestsPerSecond),
    breaker: breakerSettings(spec.circuitBreaker),
    observe: ctx.observe,
    ...(ctx.onFailover ? { onFailover: (move) => ctx.onFailover?.(move) } : {}),
  });
  try {
    const tokens = tokenManagerFor(store, spec, http, vaultLogin(store, spec.auth, ctx, http));
    http.tokens = tokens;
    return { spec, http, tokens, label };
  } catch (err) {
    http.close();
    throw err;
  }
}

/**
 * Token managers by store, kept across client rebuilds (like budgets and
 * breakers), as long as what the token depends on (addresses, namespace, auth)
 * is unchanged.
 */
const tokenManagers = new Map<string, { key: string; manager: VaultTokenManager }>();

function tokenManagerFor(
  store: AnyStore,
  spec: VaultProviderSpec,
  http: VaultHttp,
  login: VaultLogin,
): VaultTokenManager {
  const label = storeLabel(store);
  const key = JSON.stringify([spec.server, spec.failover ?? [], spec.namespace ?? '', spec.auth, spec.tls ?? {}]);
  const kept = tokenManagers.get(label);
  if (kept && kept.key === key) {
    kept.manager.rebind(http, login);
    return kept.manager;
  }
  const manager = new VaultTokenManager(http, login, label);
  tokenManagers.set(label, { key, manager });
  return manager;
}

interface HealthAnswer {
  sealed?: unknown;
  initialized?: unknown;
  standby?: unknown;
}

/** A client for one Vault store. */
export class VaultProviderClient implements ProviderClient {
  readonly kv: VaultKv;
  /** Certificates, dynamic secrets and their leases (issue.ts). */
  readonly issuer: VaultIssuer;
  /** With `decrypt.transit`: decrypts transit ciphertexts (inline and fetched) through this store's Vault. */
  readonly transit: TransitDecryptor | undefined;
  readonly decrypt?: (ciphertext: string, binding: CiphertextBinding, opts?: CallOptions) => Promise<string>;

  constructor(readonly connection: VaultConnection) {
    this.kv = new VaultKv(connection.http, {
      mount: connection.spec.path ?? 'secret',
      version: connection.spec.version ?? 'v2',
      store: connection.label,
    });
    this.issuer = new VaultIssuer(connection.http, connection.label);
    const transit = connection.spec.decrypt?.transit;
    this.transit = transit
      ? new TransitDecryptor(new TransitKey(httpTransitApi(connection.http), transit, httpFailureOf))
      : undefined;
    if (this.transit) {
      const decryptor = this.transit;
      this.decrypt = (ciphertext, binding, opts) => decryptor.decrypt(ciphertext, binding, opts);
    }
  }

  issue(req: IssueRequest, opts: CallOptions = {}): Promise<IssuedCredential> {
    return this.issuer.issue(req, opts);
  }

  renewLease(leaseId: string, incrementSeconds: number, opts: CallOptions = {}): Promise<LeaseRenewal> {
    return this.issuer.renewLease(leaseId, incrementSeconds, opts);
  }

  revokeLease(leaseId: string, opts: CallOptions = {}): Promise<void> {
    return this.issuer.revokeLease(leaseId, opts);
  }

  getValue(ref: RemoteRef, opts: CallOptions = {}): Promise<string> {
    return this.kv.getValue(ref, opts);
  }

  getProperties(key: string, version?: string, opts: CallOptions = {}): Promise<Properties> {
    return this.kv.getProperties(key, version, opts);
  }

  find(query: FindSpec, opts: FindOptions = {}): Promise<Map<string, Properties>> {
    return this.kv.find(query, opts);
  }

  putValue(ref: WriteRef, value: string | Properties, opts: PutValueOptions): Promise<{ version: string }> {
    return this.kv.putValue(ref, value, opts);
  }

  servedRegion(): ServedRegion | undefined {
    return this.connection.http.servedRegion();
  }

  /**
   * sys/health (unauthenticated; a sealed Vault is VaultSealed, an
   * uninitialised one a ProviderError), then a token lookup, which logs in
   * when needed: the address, TLS and credentials all work.
   */
  async check(opts: CallOptions = {}): Promise<void> {
    const { http, label } = this.connection;
    const health = await http.request<HealthAnswer>('GET', 'v1/sys/health', {
      ...opts,
      anonymous: true,
      operation: 'sys.health',
      // Standbys (429, 472, 473), an uninitialised or sealed Vault (501, 503) answer with a body: read it.
      acceptStatus: [429, 472, 473, 501, 503],
    });
    if (health?.sealed === true) throw new VaultSealedError(`${label}: Vault is sealed`);
    if (health?.initialized === false)
      throw new ProviderConfigError(`${label}: Vault is not initialised`, { clientUnusable: false });
    await http.request('GET', 'v1/auth/token/lookup-self', { ...opts, operation: 'token.lookup' });
    // decrypt.transit: the key is readable and derived (TransitKeyNotDerived otherwise), before any ciphertext needs it.
    await this.transit?.check(opts);
  }

  close(): Promise<void> {
    this.transit?.clear();
    this.connection.http.close();
    return Promise.resolve();
  }
}

/** Budgets and breakers of the stores this provider connected (the registries are shared with the AWS providers). */
const lifecycle = storeLifecycle();

export const vaultProvider: Provider = {
  name: 'vault',
  capabilities: { entries: true, write: true, batchRead: false, decrypt: true, failover: true, issue: true },
  async validateStore(store: AnyStore, policy: StorePolicy, opts?: CallOptions): Promise<void> {
    // server and failover are endpoints like any other (policy.ts lists them): a namespaced store needs --allowed-endpoints.
    await validateStorePolicy(store, policy, opts);
  },
  async connect(store: AnyStore, ctx: ProviderContext, opts: CallOptions = {}): Promise<ProviderClient> {
    const connection = await connectVault(store, ctx, opts);
    let client: VaultProviderClient;
    try {
      client = new VaultProviderClient(connection);
    } catch (err) {
      // decrypt.transit names a mount or key that is not a path segment.
      connection.http.close();
      throw err;
    }
    lifecycle.track(store);
    return client;
  },
  forgetStore(store: AnyStore): void {
    lifecycle.forgetStore(store);
    tokenManagers.delete(storeLabel(store));
  },
  stats: () => lifecycle.stats(),
};
