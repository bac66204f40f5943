// An in-memory stand-in for the transit calls secretsync makes (the
// `TransitApi` interface we own), with Vault's behaviour where it matters: a
// derived key authenticates the context (a non-derived one ignores it), key
// versions and min_decryption_version, 400 with Vault's error strings for a
// refused ciphertext. The real engine is exercised by the integration tests.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { TransitApi, VaultFailure } from '../../../../src/providers/vault/transit.js';

export class FakeVaultError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(`HTTP ${status}`);
  }
}

export const fakeFailureOf = (err: unknown): VaultFailure | undefined =>
  err instanceof FakeVaultError ? { status: err.status, errors: err.errors } : undefined;

interface FakeKey {
  derived: boolean;
  versions: Buffer[];
  minDecryptionVersion: number;
}

export class FakeTransit implements TransitApi {
  private readonly keys = new Map<string, FakeKey>();
  readonly calls: string[] = [];
  /** Delay for each call, for coalescing tests. */
  delayMs = 0;
  /** Items of each batch decrypt. */
  readonly batchSizes: number[] = [];
  /** Most calls that were in flight at once. */
  maxConcurrent = 0;
  private active = 0;

  createKey(mount: string, name: string, derived = true): void {
    this.keys.set(`${mount}/${name}`, { derived, versions: [randomBytes(32)], minDecryptionVersion: 1 });
  }

  rotate(mount: string, name: string): void {
    this.key(`${mount}/${name}`).versions.push(randomBytes(32));
  }

  setMinDecryptionVersion(mount: string, name: string, version: number): void {
    this.key(`${mount}/${name}`).minDecryptionVersion = version;
  }

  count(operation: string): number {
    return this.calls.filter((c) => c === operation).length;
  }

  async read(path: string): Promise<Record<string, unknown>> {
    this.calls.push(`read ${path}`);
    await this.pause();
    const m = /^(.+)\/keys\/([^/]+)$/.exec(path);
    const key = m ? this.keys.get(`${m[1]}/${m[2]}`) : undefined;
    if (!key) throw new FakeVaultError(404, []);
    return { derived: key.derived, type: 'aes256-gcm96', latest_version: key.versions.length };
  }

  async write(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const m = /^(.+)\/(encrypt|decrypt|rewrap)\/([^/]+)$/.exec(path);
    if (!m) throw new FakeVaultError(404, []);
    const [, mount, operation, name] = m as unknown as [string, string, string, string];
    this.calls.push(operation);
    this.active++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.active);
    try {
      await this.pause();
    } finally {
      this.active--;
    }
    const key = this.keys.get(`${mount}/${name}`);
    if (!key) throw new FakeVaultError(400, ['encryption key not found']);
    if (operation === 'decrypt' && Array.isArray(body.batch_input)) return this.decryptBatch(key, body);
    const context = typeof body.context === 'string' ? Buffer.from(body.context, 'base64') : Buffer.alloc(0);
    if (key.derived && context.length === 0) throw new FakeVaultError(400, ["missing 'context' for key derivation"]);
    if (operation === 'encrypt') {
      return {
        ciphertext: this.seal(key, key.versions.length, Buffer.from(String(body.plaintext), 'base64'), context),
      };
    }
    const plaintext = this.open(key, String(body.ciphertext), context);
    if (operation === 'decrypt') return { plaintext: plaintext.toString('base64') };
    return { ciphertext: this.seal(key, key.versions.length, plaintext, context) };
  }

  /** Vault's batch answer: one result per item; 400 (no per-item detail kept by our client) when every item failed. */
  private decryptBatch(key: FakeKey, body: Record<string, unknown>): Record<string, unknown> {
    this.batchSizes.push((body.batch_input as unknown[]).length);
    const results = (body.batch_input as { ciphertext: string; context?: string }[]).map((item) => {
      try {
        const context = Buffer.from(item.context ?? '', 'base64');
        return { plaintext: this.open(key, item.ciphertext, context).toString('base64') };
      } catch (err) {
        return { plaintext: '', error: err instanceof FakeVaultError ? (err.errors[0] ?? 'error') : 'error' };
      }
    });
    if (results.every((r) => 'error' in r) || body.partial_failure_response_code !== 200) {
      if (results.some((r) => 'error' in r)) throw new FakeVaultError(400, []);
    }
    return { batch_results: results };
  }

  private seal(key: FakeKey, version: number, plaintext: Buffer, context: Buffer): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.derive(key, version, context), nonce);
    const sealed = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return `vault:v${version}:${sealed.toString('base64')}`;
  }

  private open(key: FakeKey, ciphertext: string, context: Buffer): Buffer {
    const m = /^vault:v(\d+):(.*)$/.exec(ciphertext);
    if (!m) throw new FakeVaultError(400, ['invalid ciphertext: no prefix']);
    const version = Number(m[1]);
    if (version < key.minDecryptionVersion) {
      throw new FakeVaultError(400, ['ciphertext or signature version is disallowed by policy (too old)']);
    }
    if (version > key.versions.length) throw new FakeVaultError(400, ['invalid key version']);
    const bytes = Buffer.from(m[2] ?? '', 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.derive(key, version, context), bytes.subarray(0, 12));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
    } catch {
      throw new FakeVaultError(400, ['cipher: message authentication failed']);
    }
  }

  private derive(key: FakeKey, version: number, context: Buffer): Buffer {
    const material = key.versions[version - 1] as Buffer;
    return key.derived ? createHmac('sha256', material).update(context).digest() : material;
  }

  private key(id: string): FakeKey {
    const key = this.keys.get(id);
    if (!key) throw new Error(`no fake key ${id}`);
    return key;
  }

  private async pause(): Promise<void> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
  }
}
