// An in-memory stand-in for the few KMS calls secretsync makes (the `KmsApi`
// interface we own), with KMS's behaviour where it matters: the encryption
// context is authenticated, a KeyId on Decrypt must match, errors carry KMS's names.
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { canonicalContext, type EncryptionContext } from '../../../../src/crypto/ciphertext.js';
import type { KmsApi, KmsDecryptRequest } from '../../../../src/providers/aws-kms/kms-api.js';

export function kmsError(name: string, message = name): Error {
  return Object.assign(new Error(message), { name });
}

export class FakeKms implements KmsApi {
  private readonly keys = new Map<string, Buffer>();
  private readonly aliases = new Map<string, string>();
  readonly calls: string[] = [];
  /** Delay for each Decrypt, for coalescing tests. */
  decryptDelayMs = 0;
  /** Thrown (once each) by the next calls, in order. */
  readonly failures: Error[] = [];
  closed = false;

  createKey(alias?: string): string {
    const arn = `arn:aws:kms:us-east-1:111122223333:key/${randomUUID()}`;
    this.keys.set(arn, randomBytes(32));
    if (alias) this.aliases.set(alias, arn);
    return arn;
  }

  count(operation: string): number {
    return this.calls.filter((c) => c === operation).length;
  }

  async decrypt({ blob, context, keyId }: KmsDecryptRequest): Promise<Buffer> {
    this.record('Decrypt');
    if (this.decryptDelayMs > 0) await new Promise((r) => setTimeout(r, this.decryptDelayMs));
    return this.open(blob, context, keyId);
  }

  async encrypt(req: { keyId: string; plaintext: Buffer; context: EncryptionContext }) {
    this.record('Encrypt');
    if (req.plaintext.length < 1 || req.plaintext.length > 4096) throw kmsError('ValidationException');
    return this.seal(this.resolve(req.keyId), req.plaintext, req.context);
  }

  async generateDataKey(req: { keyId: string; context: EncryptionContext }) {
    this.record('GenerateDataKey');
    const plaintext = randomBytes(32);
    return { plaintext, ...this.seal(this.resolve(req.keyId), plaintext, req.context) };
  }

  async reEncrypt(req: {
    blob: Buffer;
    sourceKeyId?: string;
    sourceContext: EncryptionContext;
    destinationKeyId: string;
    destinationContext: EncryptionContext;
  }) {
    this.record('ReEncrypt');
    const plaintext = this.open(req.blob, req.sourceContext, req.sourceKeyId);
    return this.seal(this.resolve(req.destinationKeyId), plaintext, req.destinationContext);
  }

  async ping(): Promise<void> {
    this.record('ListKeys');
  }

  close(): void {
    this.closed = true;
  }

  private record(operation: string): void {
    this.calls.push(operation);
    const failure = this.failures.shift();
    if (failure) throw failure;
  }

  private resolve(keyId: string): string {
    const arn = this.aliases.get(keyId) ?? keyId;
    if (!this.keys.has(arn)) throw kmsError('NotFoundException', `Invalid keyId ${keyId}`);
    return arn;
  }

  /** blob = len(arn) ‖ arn ‖ iv ‖ tag ‖ ciphertext, AAD = the canonical context. */
  private seal(arn: string, plaintext: Buffer, context: EncryptionContext): { blob: Buffer; keyId: string } {
    const key = this.keys.get(arn) ?? Buffer.alloc(32);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(canonicalContext(context));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const id = Buffer.from(arn);
    return { blob: Buffer.concat([Buffer.from([id.length]), id, iv, cipher.getAuthTag(), ct]), keyId: arn };
  }

  private open(blob: Buffer, context: EncryptionContext, keyId: string | undefined): Buffer {
    const idLength = blob[0] ?? 0;
    const arn = blob.subarray(1, 1 + idLength).toString();
    const key = this.keys.get(arn);
    if (!key) throw kmsError('AccessDeniedException', 'The ciphertext refers to a key that does not exist');
    if (keyId !== undefined && this.resolve(keyId) !== arn) throw kmsError('IncorrectKeyException');
    const iv = blob.subarray(1 + idLength, 13 + idLength);
    const tag = blob.subarray(13 + idLength, 29 + idLength);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(canonicalContext(context));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(blob.subarray(29 + idLength)), decipher.final()]);
    } catch {
      throw kmsError('InvalidCiphertextException');
    }
  }
}
