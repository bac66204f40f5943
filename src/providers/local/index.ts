// The `local` provider: entries in a LocalStore directory (a PersistentVolume in
// a cluster), opened with a master key read from a Kubernetes Secret. A
// namespaced store's directory must be inside --local-store-root.
import { isAbsolute } from 'node:path';
import { SecretsyncError } from '../../api/errors.js';
import { tooManyEntries } from '../../api/limits.js';
import type { AnyStore, FindSpec, RemoteRef } from '../../api/types.js';
import { parseMasterKey } from '../../crypto/aead.js';
import { compileNamePattern } from '../../secrets/pattern.js';
import { raceAbort, throwIfAborted } from '../../api/abort.js';
import type { StoreLifecycle } from '../aws/lifecycle.js';
import { allowedLocalPath, validateStorePolicy } from '../policy.js';
import {
  KeyNotFoundError,
  ProviderConfigError,
  ProviderError,
  storeLabel,
  type CallOptions,
  type FindOptions,
  type ChangeListener,
  type Properties,
  type Provider,
  type ProviderClient,
  type ProviderContext,
  type PutValueOptions,
  type WriteRef,
} from '../provider.js';
import { InvalidEntryNameError, LocalStore, type LocalStoreOptions } from './store.js';
import { forgetLocalWatch, watchLocalStore } from './watch.js';

export { LocalStore } from './store.js';

export const DEFAULT_MASTER_KEY_KEY = 'master-key';

/** Breakers of `decrypt.kms` failover, once a store that decrypts has loaded the AWS side. */
let kmsLifecycle: StoreLifecycle | undefined;

export const localProvider: Provider = {
  name: 'local',
  capabilities: { entries: true, write: true, batchRead: false, decrypt: true, failover: false },
  validateStore: validateStorePolicy,
  async connect(store: AnyStore, ctx: ProviderContext, opts: CallOptions = {}): Promise<ProviderClient> {
    // The endpoints of decrypt.kms; the path is checked (and resolved) by openLocalStore.
    await validateStorePolicy(store, ctx.policy, opts);
    const opened = await openLocalStore(store, ctx, undefined, opts);
    const client = new LocalProviderClient(
      opened,
      store.spec.provider.local?.events ? watchId(store, opened.dir) : undefined,
    );
    const decrypt = store.spec.provider.local?.decrypt;
    if (decrypt) {
      // Values in the store may be secretsync ciphertexts: the directory then never holds plaintext.
      const kms = decrypt.kms;
      if (!kms.region) throw new ProviderConfigError('spec.provider.local.decrypt.kms.region is required');
      const spec = {
        region: kms.region,
        endpoint: kms.endpoint,
        auth: kms.auth,
        roleArn: kms.roleArn,
        ...(kms.failover !== undefined ? { failover: kms.failover } : {}),
        ...(kms.circuitBreaker !== undefined ? { circuitBreaker: kms.circuitBreaker } : {}),
      };
      // The AWS SDK is loaded only by stores that decrypt with KMS.
      const [{ kmsFor }, { storeLifecycle }] = await Promise.all([
        import('../aws/decrypt.js'),
        import('../aws/lifecycle.js'),
      ]);
      kmsLifecycle ??= storeLifecycle();
      kmsLifecycle.track(store);
      const { decryptor } = await raceAbort(
        kmsFor(spec, store, ctx, undefined, opts),
        opts.signal,
        `${storeLabel(store)}: connect`,
      );
      client.decrypt = (ciphertext, binding, callOpts) => decryptor.decrypt(ciphertext, binding, callOpts);
    }
    return client;
  },
  forgetStore: (store) => {
    kmsLifecycle?.forgetStore(store);
    const path = store.spec.provider.local?.path;
    if (path !== undefined) forgetLocalWatch(watchId(store, path));
  },
  stats: () => kmsLifecycle?.stats() ?? {},
};

/**
 * Builds the store from the spec; every spec or master-key problem is a
 * `ProviderConfigError`, a namespaced store's path outside --local-store-root a
 * `StorePolicyError`. A namespaced store is opened at its real path (symbolic
 * links resolved, and checked to stay inside the root).
 */
export async function openLocalStore(
  store: AnyStore,
  ctx: ProviderContext,
  options?: LocalStoreOptions,
  opts: CallOptions = {},
): Promise<LocalStore> {
  const spec = store.spec.provider.local;
  if (!spec) throw new ProviderConfigError('spec.provider.local is not set');
  if (typeof spec.path !== 'string' || !isAbsolute(spec.path)) {
    throw new ProviderConfigError('spec.provider.local.path must be an absolute directory path');
  }
  const dir = await allowedLocalPath(store, spec.path, ctx.policy, opts);
  const ref = spec.masterKeySecretRef;
  if (!ref?.name) throw new ProviderConfigError('spec.provider.local.masterKeySecretRef.name is required');
  const key = ref.key || DEFAULT_MASTER_KEY_KEY;
  let namespace: string;
  if (store.kind === 'ClusterSecretStore') {
    if (!ref.namespace) {
      throw new ProviderConfigError(
        'spec.provider.local.masterKeySecretRef.namespace is required on a ClusterSecretStore',
      );
    }
    namespace = ref.namespace;
  } else {
    // A namespaced store reading a Secret elsewhere would let anyone who can create a SecretStore read any namespace.
    if (ref.namespace !== undefined && ref.namespace !== '') {
      throw new ProviderConfigError(
        'spec.provider.local.masterKeySecretRef.namespace is not allowed on a SecretStore (it reads from its own namespace)',
      );
    }
    if (!ctx.storeNamespace) throw new ProviderConfigError('a SecretStore must have a namespace');
    namespace = ctx.storeNamespace;
  }
  throwIfAborted(opts.signal, `${storeLabel(store)}: connect`);
  const raw = await raceAbort(
    ctx.readSecretKey(namespace, ref.name, key, opts),
    opts.signal,
    `${storeLabel(store)}: connect`,
  );
  let masterKey: Buffer;
  try {
    masterKey = parseMasterKey(raw);
  } catch {
    throw new ProviderConfigError(
      `key "${key}" of Secret ${namespace}/${ref.name}: master key must be 32 bytes (raw, base64 or hex)`,
    );
  }
  try {
    return new LocalStore(dir, masterKey, { createDirectory: false, ...options });
  } finally {
    masterKey.fill(0);
  }
}

/** Names a store's watcher across client rebuilds (see watch.ts): the store and its path as the spec says it. */
function watchId(store: AnyStore, path: string): string {
  return JSON.stringify([store.kind, store.metadata.namespace ?? '', store.metadata.name, path]);
}

class LocalProviderClient implements ProviderClient {
  decrypt?: ProviderClient['decrypt'];

  /** `watchSource`: set when the store declares `events` (the watcher's identity). */
  constructor(
    private readonly store: LocalStore,
    private readonly watchSource?: string,
  ) {}

  /** With `events.watch`: watches the store directory until `signal` aborts (see watch.ts). */
  watchChanges(listener: ChangeListener, signal: AbortSignal): boolean {
    if (this.watchSource === undefined) return false;
    watchLocalStore(this.store, this.watchSource, listener, signal);
    return true;
  }

  /**
   * Without `property`: an entry with exactly one property yields that value
   * (the common case of one secret per entry, as the ProviderClient contract
   * says); an entry with several yields the JSON of all its properties, as
   * External Secrets does for JSON secrets, so a template can still pick them
   * apart. Adding a second property to an entry therefore changes what a
   * property-less reference returns; name the property to be immune.
   */
  async getValue(ref: RemoteRef, opts: CallOptions = {}): Promise<string> {
    const properties = await this.getProperties(ref.key, ref.version, opts);
    if (ref.property !== undefined) {
      const value = Object.hasOwn(properties, ref.property) ? properties[ref.property] : undefined;
      if (value === undefined) {
        throw new KeyNotFoundError(
          `entry "${ref.key}"${ref.version ? ` version ${ref.version}` : ''} has no property "${ref.property}"`,
          ref.key,
        );
      }
      return value;
    }
    const values = Object.values(properties);
    if (values.length === 1 && values[0] !== undefined) return values[0];
    return JSON.stringify(properties);
  }

  async getProperties(key: string, version?: string, opts: CallOptions = {}): Promise<Properties> {
    const what = `local store: entry "${key}"`;
    throwIfAborted(opts.signal, what);
    try {
      return (await raceAbort(this.store.get(key, version), opts.signal, what)).properties;
    } catch (err) {
      throw translate(err, key);
    }
  }

  /** Entries listed, then read one by one; the signal is looked at between reads (a slow volume ends the call in time). */
  async find(query: FindSpec, opts: FindOptions = {}): Promise<Map<string, Properties>> {
    const what = 'local store: find';
    const pattern = query.nameRegexp === undefined ? undefined : compileNamePattern(query.nameRegexp);
    const out = new Map<string, Properties>();
    let entries: { name: string }[];
    try {
      throwIfAborted(opts.signal, what);
      entries = await raceAbort(this.store.list(query.prefix ?? ''), opts.signal, what);
    } catch (err) {
      throw translate(err, '');
    }
    const matched = pattern ? entries.filter(({ name }) => pattern.test(name)) : entries;
    // Refused before any entry is read (decrypted).
    if (opts.maxEntries !== undefined && matched.length > opts.maxEntries)
      throw tooManyEntries(opts.maxEntries, query);
    for (const { name } of matched) {
      try {
        throwIfAborted(opts.signal, what);
        out.set(name, (await raceAbort(this.store.get(name), opts.signal, what)).properties);
      } catch (err) {
        // Deleted between list and get: absent from the result, as if the search had run a moment later.
        if (err instanceof KeyNotFoundError) continue;
        throw translate(err, name);
      }
    }
    return out;
  }

  /** A new entry version: a property (or key pair) laid over the latest one, or a whole value as property `value`. */
  /**
   * The signal is looked at before the write starts and ends the wait for it;
   * a write already under way finishes (it is atomic, and a retry with the
   * same request token returns its version instead of writing another).
   */
  async putValue(ref: WriteRef, value: string | Properties, opts: PutValueOptions): Promise<{ version: string }> {
    const put = { keepVersions: opts.keepVersions, requestToken: opts.requestToken };
    const what = `local store: writing entry "${ref.key}"`;
    try {
      throwIfAborted(opts.signal, what);
      const write =
        typeof value === 'string'
          ? ref.property === undefined
            ? this.store.put(ref.key, { value }, put)
            : this.store.patch(ref.key, { [ref.property]: value }, put)
          : this.store.patch(ref.key, value, put);
      const { version } = await raceAbort(write, opts.signal, what);
      return { version: String(version) };
    } catch (err) {
      throw translate(err, ref.key);
    }
  }

  async check(opts: CallOptions = {}): Promise<void> {
    try {
      throwIfAborted(opts.signal, 'local store: check');
      await raceAbort(this.store.verifyMasterKey(), opts.signal, 'local store: check');
    } catch (err) {
      throw translate(err, '');
    }
  }

  async close(): Promise<void> {
    this.store.close();
  }
}

/**
 * Keeps the provider error contract: store failures are retried, a bad name is
 * a missing key, and a tampered or rolled-back store keeps its terminal
 * `StoreTampered` reason (it names the entry, never a value).
 */
function translate(err: unknown, key: string): Error {
  if (err instanceof SecretsyncError) return err;
  if (err instanceof InvalidEntryNameError) return new KeyNotFoundError(err.message, key);
  return new ProviderError(`local store: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
