// The one small interface every backend implements. Adding a backend means a
// folder under src/providers/ and one line in src/providers/registry.ts.
import type { AnyStore, FindSpec, RemoteRef } from '../api/types.js';

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
  getValue(ref: RemoteRef): Promise<string>;
  /** All properties of one entry (`dataFrom.extract`). */
  getProperties(key: string, version?: string): Promise<Properties>;
  /** Entries whose names match (`dataFrom.find`): entry name → properties. */
  find(query: FindSpec): Promise<Map<string, Properties>>;
  /**
   * Many values in one backend round trip where the backend allows it
   * (Secrets Manager BatchGetSecretValue). Keys of the result are `refKey(ref)`;
   * a missing key maps to a KeyNotFoundError. Optional: the controller falls
   * back to getValue.
   */
  getValues?(refs: RemoteRef[]): Promise<Map<string, string | KeyNotFoundError>>;
  /**
   * Decrypts a secretsync ciphertext (inline `data[].ciphertext`, or a fetched
   * value when the store declares `decrypt.kms`). Absent when the store has no
   * KMS configured. Throws DecryptError when the ciphertext does not belong here.
   */
  decrypt?(ciphertext: string, binding: CiphertextBinding): Promise<string>;
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
  check(): Promise<void>;
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

export interface PutValueOptions {
  /** Idempotency token (a UUID): the same token never makes a second version. */
  requestToken: string;
  /** Versions kept, where the backend lets us choose (local store). */
  keepVersions?: number;
}

export interface Provider {
  /** The field name under `spec.provider`. */
  readonly name: string;
  /** Builds a client; throws `ProviderConfigError` for a spec or credentials problem. */
  connect(store: AnyStore, ctx: ProviderContext): Promise<ProviderClient>;
}

/** The remote key (or property, or version) does not exist. The message names the key, never a value. */
export class KeyNotFoundError extends Error {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
    this.name = 'KeyNotFoundError';
  }
}

/** The store's configuration or credentials are unusable (a person must fix the spec or a Secret). */
export class ProviderConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProviderConfigError';
  }
}

/** The backend failed (unreachable, unreadable, throttled); retried with back-off. */
export class ProviderError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProviderError';
  }
}

/** A ciphertext that cannot be decrypted here (wrong place, wrong key, tampered). Never carries plaintext. */
export class DecryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptError';
  }
}

/** The identity of a remote reference, for caches and batch results. */
export function refKey(ref: RemoteRef): string {
  return JSON.stringify([ref.key, ref.property ?? null, ref.version ?? null]);
}
