// Reads what a ManagedSecret asks for from its store's client: `data` items
// (remote values and inline ciphertexts), `dataFrom.extract` and
// `dataFrom.find` (issued sources come in ready from issued.ts), decrypts secretsync ciphertexts where the store holds them,
// and keeps keys whose source is gone under `deletionPolicy: Retain`. Reads go
// through the FetchCache, so ManagedSecrets that share keys share reads.
import { checkFetchedValues, type Limits } from '../api/limits.js';
import type { ManagedSecret } from '../api/types.js';
import { isCiphertext } from '../crypto/ciphertext.js';
import { DecryptError, KeyNotFoundError, type CallOptions, type ProviderClient } from '../providers/provider.js';
import { managedKeysOf, type SecretObject } from '../secrets/desired.js';
import { keysForFoundEntries } from '../secrets/find-keys.js';
import type { FetchCache } from './fetch-cache.js';

export interface FetchedValues {
  /** Secret key → plaintext value. */
  values: Record<string, string>;
  /** Remote keys that do not exist, as `key` or `key[property]`. */
  missing: string[];
}

export async function fetchValues(
  ms: ManagedSecret,
  client: ProviderClient,
  cache: FetchCache,
  storeKey: string,
  ttlMs: number,
  existing: SecretObject | undefined,
  limits: Limits,
  opts: CallOptions,
  /** Values of `dataFrom[].certificate` / `.dynamic` sources, issued or kept by IssuedCredentials (src/controller/issued.ts). */
  issued?: Record<string, string>,
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
          throw new DecryptError(
            `data "${item.secretKey}" carries a ciphertext, but the store has no KMS (decrypt.kms) or Vault transit (decrypt.transit) to decrypt it`,
          );
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
      // The provider stops listing past the bound; two entries that land on one Secret key are a spec error.
      const found = await cache.find(storeKey, client, item.find, ttlMs, {
        ...opts,
        maxEntries: limits.maxFindEntries,
      });
      Object.assign(values, keysForFoundEntries(found, item.find.prefix));
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
  // Issued values are never ciphertexts to decrypt: laid on after decryption.
  if (issued) Object.assign(values, issued);
  // Retain: keys we wrote before whose source entry is gone stay as they were.
  if ((ms.spec.target?.deletionPolicy ?? 'Retain') === 'Retain' && existing && !ms.spec.target?.template) {
    for (const k of managedKeysOf(existing)) {
      const old = existing.data?.[k];
      if (!(k in values) && old !== undefined && (ms.spec.data ?? []).every((d) => d.secretKey !== k))
        values[k] = Buffer.from(old, 'base64').toString('utf8');
    }
  }
  checkFetchedValues(values, limits, `the values of ManagedSecret ${ms.metadata.namespace}/${ms.metadata.name}`);
  return { values, missing };
}
