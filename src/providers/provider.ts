// The one small interface every backend implements. Adding a backend means a
// folder under src/providers/ and one line in src/providers/registry.ts.
import type { AnyStore, FindSpec, RemoteRef } from '../api/types.js';
import { SecretsyncError, type SecretsyncErrorOptions } from '../api/errors.js';

/** Properties of one remote entry: a JSON object of strings. */
export type Properties = Record<string, string>;

/** What a provider may ask of the cluster while it builds a client for a store. */
export interface ProviderContext {
  /** Reads one key of a Secret (for credentials and master keys). Throws `ProviderConfigError` when missing. */
  readSecretKey(namespace: string, name: string, key: string, opts?: CallOptions): Promise<Buffer>;
  /**
   * Reads one key of a ConfigMap as text (a CA bundle). Throws `ProviderConfigError` when missing.
   * Optional: contexts without it (the CLI) refuse ConfigMap references.
   */
  readConfigMapKey?(namespace: string, name: string, key: string, opts?: CallOptions): Promise<string>;
  /** The namespace a namespaced SecretStore lives in; undefined for a ClusterSecretStore. */
  storeNamespace: string | undefined;
  /** Mints a short-lived token for a ServiceAccount with the TokenRequest API (for AssumeRoleWithWebIdentity). */
  requestServiceAccountToken(
    namespace: string,
    name: string,
    audiences: string[],
    expirationSeconds: number,
  ): Promise<string>;
  /** Whether a namespaced SecretStore may use the operator's own cloud identity (operator flag, default off). */
  allowOperatorIdentityForNamespacedStores: boolean;
  /**
   * Counts and times one backend request (metrics by provider, operation and,
   * when the caller knows which one it asked, region, and endpoint: the host of
   * the instance that served it, for providers whose failover targets are
   * instances of their own, such as IBM Cloud Secrets Manager); errors pass through.
   */
  observe<T>(operation: string, call: () => Promise<T>, region?: string, endpoint?: string): Promise<T>;
  /**
   * What the cluster admin allows namespaced stores to reach (endpoints, local
   * paths): `--allowed-endpoints` and `--local-store-root`. Required, so no
   * caller can forget it; ClusterSecretStores are not limited by it.
   */
  policy: StorePolicy;
  /** Deadlines of one backend request (`--provider-connect-timeout`, `--provider-request-timeout`). Default 3 s and 10 s. */
  timeouts?: ProviderTimeouts;
  /** Tells the operator that a store moved to another region or endpoint (counted in metrics). Must not throw. */
  onFailover?(event: FailoverMove): void;
  /**
   * One line of the operator's log, for what a provider notices outside any
   * call (an event source's poison message): names, counts and reasons, never
   * a value. Absent: nothing is logged. Must not throw.
   */
  log?(level: 'info' | 'warn', message: string, fields: Record<string, string | number>): void;
  /**
   * Counts messages an event source took from its queue, by what became of
   * them (`handled`, `ignored`, `poison`, `overflowed`, `undeleted`) for
   * /metrics. Must not throw.
   */
  countEventMessages?(outcome: EventMessageOutcome, count: number): void;
}

/** What became of one message of a store's event queue. */
export type EventMessageOutcome = 'handled' | 'ignored' | 'poison' | 'overflowed' | 'undeleted';

/** How long one backend request may take: every SDK client the providers build gets these. */
export interface ProviderTimeouts {
  /** A connection must open within this (TCP and TLS). */
  connectMs: number;
  /** One attempt must be answered within this (and its body must not stall longer). */
  requestMs: number;
}

export const DEFAULT_PROVIDER_TIMEOUTS: Readonly<ProviderTimeouts> = { connectMs: 3000, requestMs: 10_000 };

/**
 * The admin's limits for namespaced SecretStores (ClusterSecretStores are
 * written by cluster admins and are not limited). Operator flags.
 */
export interface StorePolicy {
  /**
   * Custom endpoints a namespaced store may name, as URL prefixes
   * (`https://vpce-123.kms.eu-west-1.vpce.amazonaws.com`) or `*.host` suffix
   * patterns. Empty: only the providers' own public endpoints.
   */
  allowedEndpoints: readonly string[];
  /** The directory a namespaced store's `local.path` must be inside; undefined: namespaced local stores are refused. */
  localStoreRoot: string | undefined;
}

/** A store moved from one region (or endpoint) to another. */
export interface FailoverMove {
  /** The provider whose client moved (`awsKms` for a store's `decrypt.kms`). */
  provider: string;
  /** `storeLabel(store)`. */
  store: string;
  /** Regions: equal when the move was between two endpoints of one region. */
  from: string;
  to: string;
  /** The hosts of the explicit endpoints moved from and to (absent: the region's own endpoint). */
  fromEndpoint?: string;
  toEndpoint?: string;
  /** `to` is the store's own region and endpoint (the primary is back). */
  toPrimary: boolean;
}

/**
 * Carried by every backend call: aborted when the per-sync deadline passes,
 * when the operator stops, or when this replica stops leading.
 */
export interface CallOptions {
  signal?: AbortSignal;
  /** The namespace the call is for (the ManagedSecret's): a store's shared request budget serves namespaces in turn. */
  tenant?: string;
}

/** Options of `find`: the call options and the most entries it may return. */
export interface FindOptions extends CallOptions {
  /**
   * More matching entries than this: `find` stops listing and throws LimitError
   * `TooManyEntries` (transient) instead of reading any value (`--max-find-entries`).
   */
  maxEntries?: number;
}

/** Where an inline or fetched ciphertext is being used: the KMS encryption context is built from this. */
export interface CiphertextBinding {
  namespace: string;
  managedSecret: string;
  secretKey: string;
}

/** A client for one store, built from its spec, reused across syncs until the spec or credentials change. */
export interface ProviderClient {
  /** One value: the whole entry when `property` is absent and the entry has a single property, else that property. */
  getValue(ref: RemoteRef, opts?: CallOptions): Promise<string>;
  /** All properties of one entry (`dataFrom.extract`). */
  getProperties(key: string, version?: string, opts?: CallOptions): Promise<Properties>;
  /** Entries whose names match (`dataFrom.find`): entry name → properties. */
  find(query: FindSpec, opts?: FindOptions): Promise<Map<string, Properties>>;
  /**
   * Many values in one backend round trip where the backend allows it
   * (Secrets Manager BatchGetSecretValue). Keys of the result are `refKey(ref)`;
   * a missing key maps to a KeyNotFoundError. Optional: the controller falls
   * back to getValue.
   */
  getValues?(refs: RemoteRef[], opts?: CallOptions): Promise<Map<string, string | KeyNotFoundError>>;
  /**
   * Decrypts a secretsync ciphertext (inline `data[].ciphertext`, or a fetched
   * value when the store declares `decrypt.kms`, or `decrypt.transit` on a
   * Vault store). Absent when the store has neither. Throws DecryptError when the ciphertext does not belong here.
   */
  decrypt?(ciphertext: string, binding: CiphertextBinding, opts?: CallOptions): Promise<string>;
  /**
   * Writes a new version (rotation). A string with `ref.property` is laid over
   * the entry's current properties; a string without one replaces the whole
   * value; Properties (key pairs) are laid over the current properties.
   * Idempotent per `opts.requestToken`: a retry with the same token (after a
   * crash or a lost answer) returns the version the first call wrote instead
   * of writing another. Returns the new version's id. Optional: a store
   * without it cannot rotate.
   */
  putValue?(ref: WriteRef, value: string | Properties, opts: PutValueOptions): Promise<{ version: string }>;
  /**
   * With regional failover (the AWS providers' `failover`): the region that
   * answered the latest backend request. Absent, or undefined, when the store
   * has no failover regions.
   */
  servedRegion?(): ServedRegion | undefined;
  /**
   * Issues a credential the backend makes on request (a certificate from a
   * PKI role, database credentials): each call makes a new one. Optional:
   * providers without it declare `capabilities.issue` false.
   */
  issue?(req: IssueRequest, opts?: CallOptions): Promise<IssuedCredential>;
  /** Extends a lease by `incrementSeconds` (the backend may grant less, up to its max_ttl). Throws KeyNotFoundError when the lease is gone. */
  renewLease?(leaseId: string, incrementSeconds: number, opts?: CallOptions): Promise<LeaseRenewal>;
  /** Revokes a lease now (the backend deletes what it issued). Succeeds when the lease is already gone. */
  revokeLease?(leaseId: string, opts?: CallOptions): Promise<void>;
  /** A real reachability/credential check for the store's Ready condition. */
  check(opts?: CallOptions): Promise<void>;
  /**
   * Starts the store's event source when its spec declares one (`events` in the provider block); runs until `signal`
   * aborts. Absent, or returning false: the store has no event source and is polled as before.
   */
  watchChanges?(listener: ChangeListener, signal: AbortSignal): boolean;
  close(): Promise<void>;
}

/**
 * What a ManagedSecret asks a store to issue (`dataFrom[].certificate`,
 * `dataFrom[].dynamic`), provider-neutral: the controller never knows which
 * backend answers.
 */
export type IssueRequest =
  | {
      kind: 'certificate';
      /** Where the backend issues (Vault: a PKI role's `pki/issue/<role>`). */
      path: string;
      commonName: string;
      altNames?: string[];
      ipSans?: string[];
      /** Go-style duration; absent: the role's default. */
      ttl?: string;
    }
  | {
      kind: 'dynamic';
      path: string;
      method: 'GET' | 'POST';
      /** Query parameters (GET) or the JSON body (POST). */
      parameters?: Record<string, string>;
    };

/** A credential the backend issued. Only `properties` is secret; the rest may be logged and recorded in status. */
export interface IssuedCredential {
  /** Secret key → value. A certificate has `tls.crt` (with intermediates), `tls.key` and `ca.crt`. */
  properties: Properties;
  /** The backend's lease (absent: nothing to renew or revoke). */
  leaseId?: string;
  /** Whether `renewLease` can extend the lease. */
  renewable: boolean;
  /** Seconds the lease (or the value) is valid from now; 0: no expiry known. */
  leaseSeconds: number;
  /** Certificates: serial number (hex, colon-separated as Vault prints it), validity. */
  serialNumber?: string;
  notBefore?: Date;
  notAfter?: Date;
}

/** What a lease renewal granted: the backend may grant less than asked (max_ttl). */
export interface LeaseRenewal {
  leaseSeconds: number;
  renewable: boolean;
}

/** What a store's event source tells the operator. Methods must not throw. */
export interface ChangeListener {
  /** These entries changed (names as RemoteRef.key / find results use them): sync the ManagedSecrets that use them. */
  changed(keys: readonly string[]): void;
  /** Anything may have changed (the source lost events, overflowed, or restarted): sync every ManagedSecret of the store. */
  changedAll(): void;
  /** The source fails (queue unreachable, permission denied, watcher error): reason for EventsDegraded, message without values. */
  degraded(reason: string, message: string): void;
  /** Events flow again after degraded(). */
  flowing(): void;
}

/** Which region answered: `primary` when it is the store's own region and endpoint, not a failover one. */
export interface ServedRegion {
  region: string;
  /**
   * The host (and port) of the endpoint that answered, set only when the
   * store's failover lists more than one endpoint in `region`.
   */
  endpoint?: string;
  primary: boolean;
}

/** Where a rotation writes: an entry, and optionally one property of it. */
export interface WriteRef {
  key: string;
  property?: string;
}

export interface PutValueOptions extends CallOptions {
  /** Idempotency token (a UUID): the same token never makes a second version. */
  requestToken: string;
  /** Versions kept, where the backend lets us choose (local store). */
  keepVersions?: number;
}

export interface Provider {
  /** The field name under `spec.provider`. */
  readonly name: string;
  /** What its clients can do, known without connecting (the controller refuses a rotation on a read-only store). */
  readonly capabilities: ProviderCapabilities;
  /**
   * Builds a client; throws `ProviderConfigError` for a spec or credentials
   * problem and `StorePolicyError` when a namespaced store asks for what the
   * admin has not allowed (it runs `validateStore` first).
   */
  connect(store: AnyStore, ctx: ProviderContext, opts?: CallOptions): Promise<ProviderClient>;
  /**
   * The admin's limits on a namespaced store (`StorePolicyError`), without
   * connecting: every endpoint the spec names against the allowlist, a local
   * path against the root. `connect` runs it too; the controller may run it
   * first to report a refused store without building anything.
   */
  validateStore(store: AnyStore, policy: StorePolicy, opts?: CallOptions): Promise<void>;
  /** The store was deleted or changed: drop what the provider keeps for it (budgets, breakers). */
  forgetStore?(store: AnyStore): void;
  /** Numbers for /metrics, read at scrape time. */
  stats?(): ProviderStats;
}

/** Declared abilities of a provider's clients (the optional ProviderClient methods, and what they depend on). */
export interface ProviderCapabilities {
  /** The store holds entries: getValue, getProperties and find work (awsKms only decrypts). */
  entries: boolean;
  /** `putValue`: rotation can write to the store. */
  write: boolean;
  /** `getValues`: many values in few backend round trips. */
  batchRead: boolean;
  /** `decrypt` (for awsKms always; for the others when the store sets `decrypt.kms`, or `decrypt.transit` on Vault). */
  decrypt: boolean;
  /** `servedRegion`: the store may list failover regions or endpoints. */
  failover: boolean;
  /** `issue`, `renewLease`, `revokeLease`: certificates and dynamic secrets (`dataFrom[].certificate` / `.dynamic`). Absent: false. */
  issue?: boolean;
}

/** What a provider reports for /metrics, per store. */
export interface ProviderStats {
  /** Request budgets (requestsPerSecond): requests waiting and drawn since start. */
  budgets?: { store: string; waiting: number; used: number }[];
  /** Circuit breakers of regional failover. */
  circuits?: { provider: string; store: string; region: string; endpoint: string; open: boolean }[];
}

/** `SecretStore ns/name` or `ClusterSecretStore name`: how messages and metrics name a store. */
export function storeLabel(store: AnyStore): string {
  return store.kind === 'ClusterSecretStore'
    ? `ClusterSecretStore ${store.metadata.name}`
    : `SecretStore ${store.metadata.namespace ?? ''}/${store.metadata.name}`;
}

/** The remote key (or property, or version) does not exist. The message names the key, never a value. */
export class KeyNotFoundError extends SecretsyncError {
  constructor(
    message: string,
    readonly key: string,
  ) {
    // The key may appear later: retried with back-off.
    super('KeyNotFound', 'transient', message);
    this.name = 'KeyNotFoundError';
  }
}

export interface ProviderConfigErrorOptions {
  /** Default 'InvalidProviderConfig'. */
  reason?: string;
  /**
   * Whether the client must be rebuilt (default true: the spec or a Secret it
   * read at connect is wrong, so a fix is only seen by a new client). False
   * where the client is fine and only a permission is missing (AccessDenied on
   * one key): rebuilding would only throw away its caches.
   */
  clientUnusable?: boolean;
}

/**
 * The store's configuration, credentials or permissions are wrong (a person
 * must fix the spec, a Secret or a policy). Retried with back-off, because the
 * Secret a store reads is not watched and policies change outside the cluster.
 */
export class ProviderConfigError extends SecretsyncError {
  constructor(message: string, options: string | ProviderConfigErrorOptions = {}) {
    const opts = typeof options === 'string' ? { reason: options } : options;
    super(opts.reason ?? 'InvalidProviderConfig', 'transient', message, {
      clientUnusable: opts.clientUnusable ?? true,
    });
    this.name = 'ProviderConfigError';
  }
}

/**
 * A namespaced store asks for something the cluster admin has not allowed
 * (an endpoint outside the allowlist, a local path outside the root). Waits
 * for the store to change.
 */
export class StorePolicyError extends SecretsyncError {
  /** `EndpointNotAllowed` (an endpoint outside --allowed-endpoints), `PathNotAllowed` (outside --local-store-root). */
  constructor(message: string, reason = 'StoreNotAllowed') {
    super(reason, 'terminal', message);
    this.name = 'StorePolicyError';
  }
}

/** The backend failed (unreachable, unreadable, throttled); retried with back-off. */
export class ProviderError extends SecretsyncError {
  constructor(message: string, options?: SecretsyncErrorOptions) {
    super('ProviderError', 'transient', message, options);
    this.name = 'ProviderError';
  }
}

/** A ciphertext that cannot be decrypted here (wrong place, wrong key, tampered). Never carries plaintext. */
export class DecryptError extends SecretsyncError {
  constructor(message: string) {
    super('DecryptFailed', 'terminal', message);
    this.name = 'DecryptError';
  }
}

/** The identity of a remote reference, for caches and batch results. */
export function refKey(ref: RemoteRef): string {
  return JSON.stringify([ref.key, ref.property ?? null, ref.version ?? null]);
}
