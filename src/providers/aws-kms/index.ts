// The `awsKms` provider: a store that only decrypts inline ciphertexts
// (`data[].ciphertext`, made by `secretsync encrypt`) with one region's KMS.
// It holds no entries of its own, so it cannot get, extract or find.
import { KMSClient } from '@aws-sdk/client-kms';
import type { AnyStore } from '../../api/types.js';
import { storeBudgets, storeLabel } from '../aws/budget.js';
import { awsRegionalConfigs } from '../aws/client-config.js';
import { RegionalClients, breakerSettings } from '../aws/failover.js';
import { RegionalKmsApi } from '../aws/regional-kms.js';
import {
  ProviderConfigError,
  ProviderError,
  type CiphertextBinding,
  type Properties,
  type Provider,
  type ProviderClient,
  type ProviderContext,
  type ServedRegion,
} from '../provider.js';
import { KmsDecryptor } from './decryptor.js';
import { CREDENTIAL_ERRORS, awsErrorName, describeAwsError, sdkKmsApi, type KmsApi } from './kms-api.js';

export { isCiphertext } from '../../crypto/ciphertext.js';
export { DecryptCache, type DecryptCacheOptions, type DecryptCacheStats } from './cache.js';
export { KmsDecryptor, translateKmsError, type ObserveFn } from './decryptor.js';
export { DataKey, KmsEncryptor, type EncryptOptions } from './encryptor.js';
export { sdkKmsApi, type KmsApi, type KmsDecryptApi, type KmsDecryptRequest } from './kms-api.js';

export const awsKmsProvider: Provider = {
  name: 'awsKms',
  async connect(store: AnyStore, ctx: ProviderContext): Promise<ProviderClient> {
    const spec = store.spec.provider.awsKms;
    if (!spec) throw new ProviderConfigError('spec.provider.awsKms is not set');
    if (typeof spec.region !== 'string' || spec.region === '') {
      throw new ProviderConfigError('spec.provider.awsKms.region is required');
    }
    const budget = storeBudgets.for(store, spec.requestsPerSecond);
    const configs = await awsRegionalConfigs(spec, store, ctx);
    const regions = new RegionalClients(
      configs.map(({ target, config }) => ({ target, client: sdkKmsApi(new KMSClient(config)) })),
      { store: storeLabel(store), provider: 'awsKms', settings: breakerSettings(spec.circuitBreaker) },
    );
    // Every KMS request (each region tried) waits for the store's request budget; calls are counted and timed.
    const kms = new RegionalKmsApi(regions, () => budget.take());
    // The decryptor calls observe as a plain function; keep the context as its receiver.
    const observe: ProviderContext['observe'] = (operation, call) => ctx.observe(operation, call);
    return new AwsKmsClient(kms, new KmsDecryptor(kms, observe), observe);
  },
};

const NO_ENTRIES =
  'an awsKms store only decrypts inline ciphertexts (data[].ciphertext); use remoteRef, dataFrom and find with a store that holds entries';

/** Exported for tests; built by `awsKmsProvider.connect`. */
export class AwsKmsClient implements ProviderClient {
  constructor(
    private readonly kms: KmsApi,
    readonly decryptor: KmsDecryptor,
    private readonly observe: ProviderContext['observe'],
  ) {}

  async getValue(): Promise<string> {
    throw new ProviderConfigError(NO_ENTRIES);
  }

  async getProperties(): Promise<Properties> {
    throw new ProviderConfigError(NO_ENTRIES);
  }

  async find(): Promise<Map<string, Properties>> {
    throw new ProviderConfigError(NO_ENTRIES);
  }

  decrypt(ciphertext: string, binding: CiphertextBinding): Promise<string> {
    return this.decryptor.decrypt(ciphertext, binding);
  }

  /**
   * ListKeys (one result): proves the endpoint answers and the credentials
   * authenticate. AccessDenied also proves both (AWS authenticates before it
   * authorizes), and a least-privilege policy that grants only kms:Decrypt on
   * some keys is normal, so it counts as healthy.
   */
  async check(): Promise<void> {
    try {
      await this.observe('ListKeys', () => this.kms.ping());
    } catch (err) {
      const name = awsErrorName(err);
      if (name === 'AccessDeniedException') return;
      if (err instanceof ProviderConfigError || err instanceof ProviderError) throw err;
      if (CREDENTIAL_ERRORS.has(name)) {
        throw new ProviderConfigError(`KMS did not accept the store's AWS credentials (${describeAwsError(err)})`);
      }
      throw new ProviderError(`KMS ListKeys failed: ${describeAwsError(err)}`, { cause: err });
    }
  }

  /** The region that answered the latest request, when the store has `failover` regions. */
  servedRegion(): ServedRegion | undefined {
    return this.kms instanceof RegionalKmsApi ? this.kms.servedRegion() : undefined;
  }

  async close(): Promise<void> {
    this.decryptor.clear();
    this.kms.close();
  }
}
