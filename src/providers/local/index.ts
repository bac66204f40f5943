// The `local` provider: entries in a LocalStore directory (a PersistentVolume in
// a cluster), opened with a master key read from a Kubernetes Secret.
import { isAbsolute } from 'node:path';
import { tooManyEntries } from '../../api/limits.js';
import type { AnyStore, FindSpec, RemoteRef } from '../../api/types.js';
import { parseMasterKey } from '../../crypto/aead.js';
import { compileNamePattern } from '../../secrets/pattern.js';
import {
  KeyNotFoundError,
  ProviderConfigError,
  ProviderError,
  type FindOptions,
  type Properties,
  type Provider,
  type ProviderClient,
  type ProviderContext,
  type PutValueOptions,
  type WriteRef,
} from '../provider.js';
import { InvalidEntryNameError, LocalStore, type LocalStoreOptions } from './store.js';

export { LocalStore } from './store.js';

export const DEFAULT_MASTER_KEY_KEY = 'master-key';

export const localProvider: Provider = {
  name: 'local',
  async connect(store: AnyStore, ctx: ProviderContext): Promise<ProviderClient> {
    const client = new LocalProviderClient(await openLocalStore(store, ctx));
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
      const { kmsFor } = await import('../aws/decrypt.js');
      const { decryptor } = await kmsFor(spec, store, ctx);
      client.decrypt = (ciphertext, binding) => decryptor.decrypt(ciphertext, binding);
    }
    return client;
  },
};

/** Builds the store from the spec; every spec or master-key problem is a `ProviderConfigError`. */
export async function openLocalStore(
  store: AnyStore,
  ctx: ProviderContext,
  options?: LocalStoreOptions,
): Promise<LocalStore> {
  const spec = store.spec.provider.local;
  if (!spec) throw new ProviderConfigError('spec.provider.local is not set');
  if (typeof spec.path !== 'string' || !isAbsolute(spec.path)) {
    throw new ProviderConfigError('spec.provider.local.path must be an absolute directory path');
  }
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
  const raw = await ctx.readSecretKey(namespace, ref.name, key);
  let masterKey: Buffer;
  try {
    masterKey = parseMasterKey(raw);
  } catch {
    throw new ProviderConfigError(
      `key "${key}" of Secret ${namespace}/${ref.name}: master key must be 32 bytes (raw, base64 or hex)`,
    );
  }
  try {
    return new LocalStore(spec.path, masterKey, { createDirectory: false, ...options });
  } finally {
    masterKey.fill(0);
  }
}

class LocalProviderClient implements ProviderClient {
  decrypt?: ProviderClient['decrypt'];

  constructor(private readonly store: LocalStore) {}

  /**
   * Without `property`: an entry with exactly one property yields that value
   * (the common case of one secret per entry, as the ProviderClient contract
   * says); an entry with several yields the JSON of all its properties, as
   * External Secrets does for JSON secrets, so a template can still pick them
   * apart. Adding a second property to an entry therefore changes what a
   * property-less reference returns; name the property to be immune.
   */
  async getValue(ref: RemoteRef): Promise<string> {
    const properties = await this.getProperties(ref.key, ref.version);
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

  async getProperties(key: string, version?: string): Promise<Properties> {
    try {
      return (await this.store.get(key, version)).properties;
    } catch (err) {
      throw translate(err, key);
    }
  }

  async find(query: FindSpec, opts?: FindOptions): Promise<Map<string, Properties>> {
    const pattern = query.nameRegexp === undefined ? undefined : compileNamePattern(query.nameRegexp);
    const out = new Map<string, Properties>();
    let entries: { name: string }[];
    try {
      entries = await this.store.list(query.prefix ?? '');
    } catch (err) {
      throw translate(err, '');
    }
    const matched = pattern ? entries.filter(({ name }) => pattern.test(name)) : entries;
    // Refused before any entry is read (decrypted).
    if (opts?.maxEntries !== undefined && matched.length > opts.maxEntries)
      throw tooManyEntries(opts.maxEntries, query);
    for (const { name } of matched) {
      try {
        out.set(name, (await this.store.get(name)).properties);
      } catch (err) {
        // Deleted between list and get: absent from the result, as if the search had run a moment later.
        if (err instanceof KeyNotFoundError) continue;
        throw translate(err, name);
      }
    }
    return out;
  }

  /** A new entry version: a property (or key pair) laid over the latest one, or a whole value as property `value`. */
  async putValue(ref: WriteRef, value: string | Properties, opts: PutValueOptions): Promise<{ version: string }> {
    const put = { keepVersions: opts.keepVersions, requestToken: opts.requestToken };
    try {
      const { version } =
        typeof value === 'string'
          ? ref.property === undefined
            ? await this.store.put(ref.key, { value }, put)
            : await this.store.patch(ref.key, { [ref.property]: value }, put)
          : await this.store.patch(ref.key, value, put);
      return { version: String(version) };
    } catch (err) {
      throw translate(err, ref.key);
    }
  }

  async check(): Promise<void> {
    try {
      await this.store.verifyMasterKey();
    } catch (err) {
      throw translate(err, '');
    }
  }

  async close(): Promise<void> {
    this.store.close();
  }
}

/** Keeps the provider error contract: store failures are retried, a bad name is a missing key. */
function translate(err: unknown, key: string): Error {
  if (err instanceof KeyNotFoundError || err instanceof ProviderError || err instanceof ProviderConfigError) return err;
  if (err instanceof InvalidEntryNameError) return new KeyNotFoundError(err.message, key);
  return new ProviderError(`local store: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
