// Decrypts secretsync ciphertexts with KMS, for the awsKms provider and for
// every provider that declares `decrypt.kms`. What KMS returns is cached per
// decryptor (see cache.ts), so many values under one data key cost one call.
import { createHash } from 'node:crypto';
import { KMSClient } from '@aws-sdk/client-kms';
import {
  canonicalContext,
  encryptionContext,
  openEnvelope,
  parseCiphertext,
  type Ciphertext,
  type EncryptionContext,
} from '../../crypto/ciphertext.js';
import { SecretsyncError } from '../../api/errors.js';
import { raceAbort, throwIfAborted } from '../../api/abort.js';
import { AwsFailureSummary, retryAfterMsOf } from '../aws/errors.js';
import {
  DecryptError,
  ProviderConfigError,
  ProviderError,
  type CallOptions,
  type CiphertextBinding,
  type ProviderContext,
} from '../provider.js';
import {
  DecryptCache,
  decodePlaintext,
  zeroIfAbandoned,
  type DecryptCacheOptions,
  type DecryptCacheStats,
} from '../decrypt-cache.js';
import {
  CREDENTIAL_ERRORS,
  REFUSED_ERRORS,
  awsErrorName,
  describeAwsError,
  sdkKmsApi,
  type KmsDecryptApi,
} from './kms-api.js';

/** `ProviderContext.observe`: counts and times one backend call. Called as a plain function. */
export type ObserveFn = ProviderContext['observe'];

const passThrough: ObserveFn = (_operation, call) => call();

export class KmsDecryptor {
  private readonly kms: KmsDecryptApi;
  private readonly cache: DecryptCache;

  /**
   * @param kms an SDK client (its region, endpoint and credentials are the store's) or any `KmsDecryptApi`
   * @param observe every KMS call goes through it as `observe('Decrypt', call)`
   */
  constructor(
    kms: KMSClient | KmsDecryptApi,
    private readonly observe: ObserveFn = passThrough,
    options: DecryptCacheOptions = {},
  ) {
    this.kms = kms instanceof KMSClient || !('decrypt' in kms) ? sdkKmsApi(kms) : kms;
    this.cache = new DecryptCache(options);
  }

  /**
   * The value of a secretsync ciphertext used at `binding`. Throws DecryptError
   * when it is not a ciphertext, was modified, or belongs somewhere else;
   * ProviderError when KMS could not be asked (retry later); ProviderConfigError
   * when KMS did not accept the credentials. No message carries a value.
   * An aborted `opts.signal` ends the call at once with the signal's error.
   */
  async decrypt(ciphertext: string, binding: CiphertextBinding, opts: CallOptions = {}): Promise<string> {
    return decodePlaintext(await this.decryptBytes(ciphertext, binding, opts), where(binding));
  }

  /** Like `decrypt`, as bytes the caller owns (and may zero). */
  async decryptBytes(ciphertext: string, binding: CiphertextBinding, opts: CallOptions = {}): Promise<Buffer> {
    throwIfAborted(opts.signal, where(binding));
    let parsed: Ciphertext;
    let context: EncryptionContext;
    try {
      parsed = parseCiphertext(ciphertext);
      context = encryptionContext(parsed.scope, binding);
    } catch (err) {
      throw prefixed(err, binding);
    }
    const unwrapped = await this.unwrap(parsed, context, binding, opts.signal);
    if (parsed.mode === 'direct') return unwrapped;
    try {
      return openEnvelope(unwrapped, parsed, context);
    } catch (err) {
      throw prefixed(err, binding, parsed);
    } finally {
      unwrapped.fill(0);
    }
  }

  /**
   * What KMS Decrypt returns for this ciphertext's blob in `context` (a data
   * key, or a direct-mode value). The KMS call is shared by every caller that
   * wants the same result at the same time, so it does not take any one
   * caller's signal (the request timeouts bound it); each caller stops
   * waiting when its own signal fires.
   */
  private async unwrap(
    c: Ciphertext,
    context: EncryptionContext,
    binding: CiphertextBinding,
    signal: AbortSignal | undefined,
  ): Promise<Buffer> {
    const load = this.cache.get(cacheKey(c.keyId, c.blob, context), () =>
      this.observe('Decrypt', () => this.kms.decrypt({ blob: c.blob, context, keyId: c.keyId })),
    );
    // A late result is someone else's copy: zero it if this caller gave up.
    const raced = raceAbort(load, signal, where(binding));
    zeroIfAbandoned(load, signal);
    try {
      return await raced;
    } catch (err) {
      throw translateKmsError(err, c, binding);
    }
  }

  cacheStats(): DecryptCacheStats {
    return this.cache.stats();
  }

  /** Forgets every cached data key and value. */
  clear(): void {
    this.cache.clear();
  }
}

/** The cache identity of one KMS Decrypt: key, blob and context, length-prefixed so no two inputs collide. */
function cacheKey(keyId: string, blob: Buffer, context: EncryptionContext): string {
  const hash = createHash('sha256');
  for (const part of [Buffer.from(keyId, 'utf8'), blob, canonicalContext(context)]) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(part.length);
    hash.update(length).update(part);
  }
  return hash.digest('hex');
}

function where(binding: CiphertextBinding): string {
  return `ciphertext for secret key "${binding.secretKey}" of ManagedSecret ${binding.namespace}/${binding.managedSecret}`;
}

function prefixed(err: unknown, binding: CiphertextBinding, c?: Ciphertext): Error {
  if (err instanceof DecryptError) {
    return new DecryptError(`${where(binding)}${c ? ` (scope ${c.scope})` : ''}: ${err.message}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

const SCOPE_HINT: Record<Ciphertext['scope'], string> = {
  strict: 'it was made for another namespace, ManagedSecret or secret key, or under a KMS key this store cannot use',
  namespace: 'it was made for another namespace, or under a KMS key this store cannot use',
  cluster: 'it was made under a KMS key this store cannot use, or was modified',
};

/** KMS failures in terms of the provider contract; the message names the key and scope, never a value. */
export function translateKmsError(err: unknown, c: Ciphertext, binding: CiphertextBinding): Error {
  if (err instanceof SecretsyncError) return err;
  const name = awsErrorName(err);
  const at = `${where(binding)} (scope ${c.scope}, KMS key ${c.keyId})`;
  if (REFUSED_ERRORS.has(name)) {
    return new DecryptError(`${at}: KMS refused to decrypt it (${name}); ${SCOPE_HINT[c.scope]}`);
  }
  if (CREDENTIAL_ERRORS.has(name)) {
    return new ProviderConfigError(`${at}: KMS did not accept the store's AWS credentials (${describeAwsError(err)})`, {
      clientUnusable: true,
    });
  }
  const retryAfterMs = retryAfterMsOf(err);
  return new ProviderError(`${at}: KMS Decrypt failed: ${describeAwsError(err)}`, {
    cause: new AwsFailureSummary(err),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}
