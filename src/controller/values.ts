// Reads what a ManagedSecret asks for from its store's client: `data` items
// (remote values and inline ciphertexts), `dataFrom.extract` and
// `dataFrom.find`, decrypts secretsync ciphertexts where the store holds them,
// and keeps keys whose source is gone under `deletionPolicy: Retain`. Reads go
// through the FetchCache, so ManagedSecrets that share keys share reads.
import type { ManagedSecret } from '../api/types.js';
import { isCiphertext } from '../crypto/ciphertext.js';
import { DecryptError, KeyNotFoundError, type CallOptions, type ProviderClient } from '../providers/provider.js';
import { managedKeysOf, type SecretObject } from '../secrets/desired.js';
import type { FetchCache } from './fetch-cache.js';

export interface FetchedValues {
  /** Secret key → plaintext value. */
  values: Record<string, string>;
  /** Remote keys that do not exist, as `key` or `key[property]`. */
  missing: string[];
}

/** Secret keys may hold only these characters; entry names found by `find` are mapped onto them. */
const toSecretKey = (name: string) => name.replace(/[^-._a-zA-Z0-9]/g, '_');

/** One value from an entry's properties: the sole property as is, several as their JSON. */
const entryValue = (props: Record<string, string>): string => {
  const keys = Object.keys(props);
  return keys.length === 1 ? (props[keys[0] as string] as string) : JSON.stringify(props);
};

export async function fetchValues(
  ms: ManagedSecret,
  client: ProviderClient,
  cache: FetchCache,
  storeKey: string,
  ttlMs: number,
  existing: SecretObject | undefined,
  opts: CallOptions,
): Promise<FetchedValues> {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  const decrypt = client.decrypt?.bind(client);
  const binding = (secretKey: string) => ({
    namespace: ms.metadata.namespace ?? '',
    managedSecret: ms.metadata.name,
    secretKey,
  });
  // Fetched concurrently, so that reads of one backend can be batched and shared.
  await Promise.all(
    (ms.spec.data ?? []).map(async (item) => {
      if (item.ciphertext !== undefined) {
        if (!decrypt)
          throw new DecryptError(`data "${item.secretKey}" carries a ciphertext, but the store has no KMS to decrypt it`);
        values[item.secretKey] = await decrypt(item.ciphertext, binding(item.secretKey), opts);
        return;
      }
      const ref = item.remoteRef;
      if (!ref) return;
      try {
        values[item.secretKey] = await cache.getValue(storeKey, client, ref, ttlMs, opts);
      } catch (err) {
        if (!(err instanceof KeyNotFoundError)) throw err;
        missing.push(ref.property ? `${ref.key}[${ref.property}]` : ref.key);
      }
    }),
  );
  for (const item of ms.spec.dataFrom ?? []) {
    if (item.extract) {
      const extract = item.extract;
      try {
        Object.assign(values, await cache.getProperties(storeKey, client, extract.key, extract.version, ttlMs, opts));
      } catch (err) {
        if (!(err instanceof KeyNotFoundError)) throw err;
        missing.push(extract.key);
      }
    } else if (item.find) {
      const query = item.find;
      const found = await cache.find(storeKey, client, query, ttlMs, opts);
      for (const [name, props] of found) {
        const relative = query.prefix && name.startsWith(query.prefix) ? name.slice(query.prefix.length) : name;
        values[toSecretKey(relative.replace(/^\/+/, ''))] = entryValue(props);
      }
    }
  }
  // Client-side decryption: the backend holds only secretsync ciphertexts, bound to the Secret key they land in.
  if (decrypt) {
    const inline = new Set((ms.spec.data ?? []).filter((d) => d.ciphertext !== undefined).map((d) => d.secretKey));
    await Promise.all(
      Object.entries(values).map(async ([secretKey, value]) => {
        if (inline.has(secretKey) || !isCiphertext(value)) return;
        values[secretKey] = await decrypt(value, binding(secretKey), opts);
      }),
    );
  }
  // Retain: keys we wrote before whose source entry is gone stay as they were.
  if ((ms.spec.target?.deletionPolicy ?? 'Retain') === 'Retain' && existing && !ms.spec.target?.template) {
    for (const k of managedKeysOf(existing)) {
      const old = existing.data?.[k];
      if (!(k in values) && old !== undefined && (ms.spec.data ?? []).every((d) => d.secretKey !== k))
        values[k] = Buffer.from(old, 'base64').toString('utf8');
    }
  }
  return { values, missing };
}
