// The few KMS operations secretsync uses, behind a tiny interface of our own:
// the SDK client is adapted to it, and unit tests substitute an in-memory fake.
import {
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ListKeysCommand,
  ReEncryptCommand,
} from '@aws-sdk/client-kms';
import type { EncryptionContext } from '../../crypto/ciphertext.js';
import { CREDENTIAL_ERRORS, describeAwsFailure } from '../aws/errors.js';
import type { CallOptions } from '../provider.js';

export { CREDENTIAL_ERRORS };

export interface KmsDecryptRequest {
  blob: Buffer;
  context: EncryptionContext;
  /** The key the blob must have been made with (KMS refuses another). */
  keyId?: string;
}

/** What the decrypting side needs: one call. */
export interface KmsDecryptApi {
  /** The plaintext KMS recovers from `blob` under `context`; throws KMS's own errors (by `name`). `opts.signal` aborts the request. */
  decrypt(req: KmsDecryptRequest, opts?: CallOptions): Promise<Buffer>;
}

/** What the CLI (encrypt, reencrypt) and the provider's check need as well. */
export interface KmsApi extends KmsDecryptApi {
  /** Returns the blob and the ARN of the key that made it. */
  encrypt(req: {
    keyId: string;
    plaintext: Buffer;
    context: EncryptionContext;
  }): Promise<{ blob: Buffer; keyId: string }>;
  /** A fresh 32-byte AES key, in plaintext and wrapped under `keyId` with `context`. */
  generateDataKey(req: {
    keyId: string;
    context: EncryptionContext;
  }): Promise<{ plaintext: Buffer; blob: Buffer; keyId: string }>;
  /** Re-wraps a direct-mode blob under another key inside KMS; the plaintext never leaves KMS. */
  reEncrypt(req: {
    blob: Buffer;
    sourceKeyId?: string;
    sourceContext: EncryptionContext;
    destinationKeyId: string;
    destinationContext: EncryptionContext;
  }): Promise<{ blob: Buffer; keyId: string }>;
  /** A cheap authenticated call (ListKeys, one result). */
  ping(opts?: CallOptions): Promise<void>;
  close(): void;
}

/** The SDK client as a `KmsApi`. */
export function sdkKmsApi(client: KMSClient): KmsApi {
  return {
    async decrypt({ blob, context, keyId }, opts = {}) {
      const out = await client.send(
        new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, ...(keyId ? { KeyId: keyId } : {}) }),
        { abortSignal: opts.signal },
      );
      if (!out.Plaintext) throw unexpected('Decrypt', 'no Plaintext');
      return Buffer.from(out.Plaintext);
    },
    async encrypt({ keyId, plaintext, context }) {
      const out = await client.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }),
      );
      if (!out.CiphertextBlob || !out.KeyId) throw unexpected('Encrypt', 'no CiphertextBlob or KeyId');
      return { blob: Buffer.from(out.CiphertextBlob), keyId: out.KeyId };
    },
    async generateDataKey({ keyId, context }) {
      const out = await client.send(
        new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }),
      );
      if (!out.Plaintext || !out.CiphertextBlob || !out.KeyId) {
        throw unexpected('GenerateDataKey', 'no Plaintext, CiphertextBlob or KeyId');
      }
      return { plaintext: Buffer.from(out.Plaintext), blob: Buffer.from(out.CiphertextBlob), keyId: out.KeyId };
    },
    async reEncrypt({ blob, sourceKeyId, sourceContext, destinationKeyId, destinationContext }) {
      const out = await client.send(
        new ReEncryptCommand({
          CiphertextBlob: blob,
          SourceEncryptionContext: sourceContext,
          ...(sourceKeyId ? { SourceKeyId: sourceKeyId } : {}),
          DestinationKeyId: destinationKeyId,
          DestinationEncryptionContext: destinationContext,
        }),
      );
      if (!out.CiphertextBlob || !out.KeyId) throw unexpected('ReEncrypt', 'no CiphertextBlob or KeyId');
      return { blob: Buffer.from(out.CiphertextBlob), keyId: out.KeyId };
    },
    async ping(opts = {}) {
      await client.send(new ListKeysCommand({ Limit: 1 }), { abortSignal: opts.signal });
    },
    close() {
      client.destroy();
    },
  };
}

function unexpected(operation: string, what: string): Error {
  return Object.assign(new Error(`KMS ${operation} returned ${what}`), { name: 'KmsUnexpectedResponse' });
}

/** The error's `name` (AWS SDK service errors carry the AWS error code there). */
export function awsErrorName(err: unknown): string {
  return err instanceof Error ? err.name : 'Error';
}

/** KMS errors that mean "this ciphertext cannot be decrypted here", as opposed to "try again later". */
export const REFUSED_ERRORS: ReadonlySet<string> = new Set([
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'AccessDeniedException',
  'NotFoundException',
  'DisabledException',
  'KMSInvalidStateException',
  'InvalidKeyUsageException',
  'InvalidArnException',
  'InvalidGrantTokenException',
]);

/**
 * A short description of an AWS error for a message: its code and the
 * service's own message, cut short, never a response body (see
 * describeAwsFailure). `secret` (a plaintext that was sent) is redacted should
 * a service ever echo it.
 */
export function describeAwsError(err: unknown, secret?: Buffer): string {
  const text = describeAwsFailure(err);
  if (secret && secret.length >= 4) {
    const plain = secret.toString('utf8');
    if (plain !== '' && text.includes(plain)) return `${awsErrorName(err)} (message withheld: it quoted the value)`;
  }
  return text;
}
