// Makes and re-wraps secretsync ciphertexts (the `encrypt` and `reencrypt`
// commands, and tests). Plaintexts and data keys stay in this process.
import { KMSClient } from '@aws-sdk/client-kms';
import { createHash } from 'node:crypto';
import type { CiphertextScope } from '../../api/types.js';
import {
  canonicalContext,
  defaultMode,
  encryptionContext,
  formatCiphertext,
  openEnvelope,
  parseCiphertext,
  sealEnvelope,
  type Ciphertext,
  type CiphertextMode,
  type EncryptionContext,
} from '../../crypto/ciphertext.js';
import { KEY_LENGTH } from '../../crypto/aead.js';
import { DecryptError, type CiphertextBinding } from '../provider.js';
import type { ObserveFn } from './decryptor.js';
import { REFUSED_ERRORS, awsErrorName, describeAwsError, sdkKmsApi, type KmsApi } from './kms-api.js';

/** KMS Encrypt takes at most this many bytes of plaintext. */
export const KMS_MAX_PLAINTEXT = 4096;

export interface EncryptOptions {
  /** KMS key id, key ARN, alias name (`alias/…`) or alias ARN. */
  keyId: string;
  scope: CiphertextScope;
  /** Where the value will be used; the fields the scope needs must be set. */
  binding: Partial<CiphertextBinding>;
  /** Default: direct up to DIRECT_MAX_BYTES, envelope above (and for empty values). */
  mode?: CiphertextMode;
  /** Envelope under this data key (made for the same key, scope and binding), so many values cost one KMS Decrypt. */
  dataKey?: DataKey;
}

/** A plaintext data key from GenerateDataKey, for sharing among several envelope ciphertexts. `destroy()` it after use. */
export class DataKey {
  #key: Buffer;

  constructor(
    readonly keyId: string,
    readonly blob: Buffer,
    readonly scope: CiphertextScope,
    readonly context: EncryptionContext,
    key: Buffer,
  ) {
    if (key.length !== KEY_LENGTH) throw new Error('a data key must be 32 bytes');
    this.#key = key;
  }

  /** @internal the key bytes; valid until destroy(). */
  get key(): Buffer {
    if (this.#key.length === 0) throw new Error('the data key was destroyed');
    return this.#key;
  }

  destroy(): void {
    this.#key.fill(0);
    this.#key = Buffer.alloc(0);
  }
}

const passThrough: ObserveFn = (_operation, call) => call();

export class KmsEncryptor {
  private readonly kms: KmsApi;
  /** reencrypt: old wrapped data key → new one, so values that shared a data key still share one. */
  private readonly rewrapped = new Map<string, Promise<{ keyId: string; blob: Buffer }>>();

  constructor(
    kms: KMSClient | KmsApi,
    private readonly observe: ObserveFn = passThrough,
  ) {
    this.kms = kms instanceof KMSClient ? sdkKmsApi(kms) : kms;
  }

  async encrypt(plaintext: Buffer | string, options: EncryptOptions): Promise<string> {
    const value = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    const context = contextFor(options.scope, options.binding);
    const mode = options.dataKey ? 'envelope' : (options.mode ?? defaultMode(value.length));
    if (mode === 'direct') {
      if (value.length < 1 || value.length > KMS_MAX_PLAINTEXT) {
        throw new Error(`direct mode takes 1 to ${KMS_MAX_PLAINTEXT} bytes; this value needs envelope mode`);
      }
      const out = await this.call('Encrypt', options.keyId, value, () =>
        this.kms.encrypt({ keyId: options.keyId, plaintext: value, context }),
      );
      return formatCiphertext({ mode, scope: options.scope, keyId: out.keyId, blob: out.blob });
    }
    const dataKey = options.dataKey ?? (await this.generateDataKey(options.keyId, options.scope, options.binding));
    try {
      if (dataKey.scope !== options.scope || !canonicalContext(dataKey.context).equals(canonicalContext(context))) {
        throw new Error('the data key was made for another scope or binding');
      }
      const sealed = sealEnvelope(dataKey.key, value, options.scope, context);
      return formatCiphertext({ mode, scope: options.scope, keyId: dataKey.keyId, blob: dataKey.blob, ...sealed });
    } finally {
      if (!options.dataKey) dataKey.destroy();
    }
  }

  /** A data key for several envelope ciphertexts of one scope and binding. */
  async generateDataKey(keyId: string, scope: CiphertextScope, binding: Partial<CiphertextBinding>): Promise<DataKey> {
    const context = contextFor(scope, binding);
    const out = await this.call('GenerateDataKey', keyId, undefined, () =>
      this.kms.generateDataKey({ keyId, context }),
    );
    return new DataKey(out.keyId, out.blob, scope, context, out.plaintext);
  }

  /**
   * The same value under `newKeyId`, with the same scope and binding. Direct
   * mode is re-wrapped inside KMS (ReEncrypt); envelope mode has its data key
   * unwrapped, checked against the payload, and wrapped again with Encrypt,
   * keeping the AES payload as it is.
   */
  async reencrypt(ciphertext: string, binding: Partial<CiphertextBinding>, newKeyId: string): Promise<string> {
    const c = parseCiphertext(ciphertext);
    const context = contextFor(c.scope, binding);
    if (c.mode === 'direct') {
      const out = await this.call('ReEncrypt', newKeyId, undefined, () =>
        this.kms.reEncrypt({
          blob: c.blob,
          sourceKeyId: c.keyId,
          sourceContext: context,
          destinationKeyId: newKeyId,
          destinationContext: context,
        }),
      );
      return formatCiphertext({ ...c, keyId: out.keyId, blob: out.blob });
    }
    const memoKey = rewrapKey(c, context, newKeyId);
    let rewrap = this.rewrapped.get(memoKey);
    if (!rewrap) {
      rewrap = this.rewrapDataKey(c, context, newKeyId);
      this.rewrapped.set(memoKey, rewrap);
      rewrap.catch(() => this.rewrapped.delete(memoKey));
    }
    const wrapped = await rewrap;
    return formatCiphertext({ ...c, keyId: wrapped.keyId, blob: wrapped.blob });
  }

  private async rewrapDataKey(
    c: Ciphertext & { mode: 'envelope' },
    context: EncryptionContext,
    newKeyId: string,
  ): Promise<{ keyId: string; blob: Buffer }> {
    const dataKey = await this.call('Decrypt', c.keyId, undefined, () =>
      this.kms.decrypt({ blob: c.blob, context, keyId: c.keyId }),
    );
    try {
      // Proves the payload belongs to this data key and binding before anything is written under the new key.
      openEnvelope(dataKey, c, context).fill(0);
      return await this.call('Encrypt', newKeyId, dataKey, () =>
        this.kms.encrypt({ keyId: newKeyId, plaintext: dataKey, context }),
      );
    } finally {
      dataKey.fill(0);
    }
  }

  close(): void {
    this.kms.close();
  }

  /** One observed KMS call; failures become messages naming the operation and key, never the value. */
  private async call<T>(
    operation: string,
    keyId: string,
    secret: Buffer | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    try {
      return await this.observe(operation, fn);
    } catch (err) {
      if (err instanceof DecryptError) throw err;
      const name = awsErrorName(err);
      if (REFUSED_ERRORS.has(name) && (operation === 'Decrypt' || operation === 'ReEncrypt')) {
        const newKey = operation === 'ReEncrypt' ? `, and may use the new key ${keyId}` : '';
        throw new DecryptError(
          `KMS refused ${operation} (${describeAwsError(err)}): the namespace, ManagedSecret and secret key given must be the ones the ciphertext was made for, and the credentials must allow decrypting with its key${newKey}`,
        );
      }
      throw new Error(`KMS ${operation} with key ${keyId} failed: ${describeAwsError(err, secret)}`, { cause: err });
    }
  }
}

function contextFor(scope: CiphertextScope, binding: Partial<CiphertextBinding>): EncryptionContext {
  try {
    return encryptionContext(scope, binding);
  } catch (err) {
    // The same check as on decryption, but here it is the caller's input that is incomplete.
    throw new Error(err instanceof Error ? err.message : String(err));
  }
}

function rewrapKey(c: Ciphertext, context: EncryptionContext, newKeyId: string): string {
  return createHash('sha256')
    .update(JSON.stringify([c.keyId, c.blob.toString('base64'), canonicalContext(context).toString('utf8'), newKeyId]))
    .digest('hex');
}
