// The one small interface every backend implements. Adding a backend means a
// folder under src/providers/ and one line in src/providers/registry.ts.
import type { AnyStore, FindSpec, RemoteRef } from '../api/types.js';
import { SecretsyncError, type SecretsyncErrorOptions } from '../api/errors.js';

/** Properties of one remote entry: a JSON object of strings. */
export type Properties = Record<string, string>;

/** What a provider may ask of the cluster while it builds a client for a store. */
export interface ProviderContext {
  /** Reads one key of a Secret (for credentials and master keys). Throws `ProviderConfigError` when missing. */
  readSecretKey(namespace: string, name: string, key: string): Promise<Buffer>;
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
  /** Counts and times one backend request (metrics by provider and operation); errors pass through. */
  observe<T>(operation: string, call: () => Promise<T>): Promise<T>;
  /** What the cluster admin allows namespaced stores to reach (endpoints, local paths). */
  policy?: StorePolicy;
  /** Tells the operator that a store moved to another region or endpoint (counted in metrics). */
  onFailover?(event: FailoverMove): void;
}

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
  provider: string;
  store: string;
  from: string;
  to: string;
}

/**
 * Carried by every backend call: aborted when the per-sync deadline passes,
 * when the operator stops, or when this replica stops leading.
 */
export interface CallOptions {
  signal?: AbortSignal;
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
   * value when the store declares `decrypt.kms`). Absent when the store has no
   * KMS configured. Throws DecryptError when the ciphertext does not belong here.
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
  /** A real reachability/credential check for the store's Ready condition. */
  check(opts?: CallOptions): Promise<void>;
  close(): Promise<void>;
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
  /**
   * Builds a client; throws `ProviderConfigError` for a spec or credentials
   * problem and `StorePolicyError` when a namespaced store asks for what the
   * admin has not allowed.
   */
  connect(store: AnyStore, ctx: ProviderContext, opts?: CallOptions): Promise<ProviderClient>;
  /** The store was deleted or changed: drop what the provider keeps for it (budgets, breakers). */
  forgetStore?(store: AnyStore): void;
  /** Numbers for /metrics, read at scrape time. */
  stats?(): ProviderStats;
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

/**
 * The store's configuration or credentials are unusable (a person must fix the
 * spec or a Secret). Retried with back-off, because the Secret a store reads
 * is not watched; the client is rebuilt, since its credentials are suspect.
 */
export class ProviderConfigError extends SecretsyncError {
  constructor(message: string, reason = 'InvalidProviderConfig') {
    super(reason, 'transient', message, { clientUnusable: true });
    this.name = 'ProviderConfigError';
  }
}

/**
 * A namespaced store asks for something the cluster admin has not allowed
 * (an endpoint outside the allowlist, a local path outside the root). Waits
 * for the store to change.
 */
export class StorePolicyError extends SecretsyncError {
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
