// KMS in several regions. A secretsync ciphertext names the key that made it
// (the key ARN KMS returned at encryption). A multi-Region key (`mrk-…`) has
// replicas with the same key id and key material in other regions, so its
// ciphertext is decrypted in a failover region by the replica: the same key
// ARN with that region's region part. A single-Region key has no replica:
// its ciphertexts are only ever sent to the primary region (to any of the
// store's endpoints in it: the same key answers there).
import type { KmsApi, KmsDecryptRequest } from '../aws-kms/kms-api.js';
import type { EncryptionContext } from '../../crypto/ciphertext.js';
import type { CallOptions, ProviderContext, ServedRegion } from '../provider.js';
import { isMultiRegionKey, keyIdInRegion, type RegionalClients } from './failover.js';

export class RegionalKmsApi implements KmsApi {
  /**
   * @param regions one KMS client per region, the primary first
   * @param beforeAttempt awaited before each request to a region (the store's request budget; it gets the call's signal)
   * @param observe counts and times each Decrypt attempt with the region it went to (callers then leave
   *   Decrypt unobserved above this, or it would count twice)
   */
  constructor(
    readonly regions: RegionalClients<KmsApi>,
    private readonly beforeAttempt?: (signal?: AbortSignal) => Promise<void>,
    private readonly observe?: ProviderContext['observe'],
  ) {}

  /**
   * The primary's key (at any endpoint of its region), or its replica in the
   * region asked (multi-Region keys only).
   */
  async decrypt(req: KmsDecryptRequest, opts: CallOptions = {}): Promise<Buffer> {
    const primary = this.regions.primary.target.region;
    const keyId = req.keyId;
    const multiRegion = keyId !== undefined && isMultiRegionKey(keyId);
    return this.regions.run(
      async (client, target) => {
        await this.beforeAttempt?.(opts.signal);
        const regionalKey =
          keyId !== undefined && target.region !== primary ? keyIdInRegion(keyId, target.region) : keyId;
        const send = () =>
          client.decrypt({ ...req, ...(regionalKey !== undefined ? { keyId: regionalKey } : {}) }, opts);
        return this.observe ? this.observe('Decrypt', send, target.region) : send();
      },
      (target) => multiRegion || target.region === primary,
      opts.signal,
    );
  }

  /** Encryption (the CLI) uses the primary region only. */
  async encrypt(req: { keyId: string; plaintext: Buffer; context: EncryptionContext }) {
    await this.beforeAttempt?.();
    return this.regions.primary.client.encrypt(req);
  }

  async generateDataKey(req: { keyId: string; context: EncryptionContext }) {
    await this.beforeAttempt?.();
    return this.regions.primary.client.generateDataKey(req);
  }

  async reEncrypt(req: Parameters<KmsApi['reEncrypt']>[0]) {
    await this.beforeAttempt?.();
    return this.regions.primary.client.reEncrypt(req);
  }

  /** ListKeys in the first available region. */
  async ping(opts: CallOptions = {}): Promise<void> {
    await this.regions.run(
      async (client) => {
        await this.beforeAttempt?.(opts.signal);
        await client.ping(opts);
      },
      undefined,
      opts.signal,
    );
  }

  servedRegion(): ServedRegion | undefined {
    return this.regions.servedRegion();
  }

  close(): void {
    for (const r of this.regions.regions) r.client.close();
  }
}
