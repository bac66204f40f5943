// The `awsKms` provider: a store that only decrypts inline ciphertexts
// (`data[].ciphertext`, made by `secretsync encrypt`) with one region's KMS.
// It holds no entries of its own, so it cannot get, extract or find.
import { KMSClient } from '@aws-sdk/client-kms';
import type { AnyStore } from '../../api/types.js';
import { raceAbort, throwIfAborted } from '../../api/abort.js';
import { storeBudgets } from '../budget.js';
import { awsRegionalConfigs } from '../aws/client-config.js';
import { mapAwsError } from '../aws/errors.js';
import { RegionalClients, breakerSettings } from '../aws/failover.js';
import { storeLifecycle } from '../aws/lifecycle.js';
import { RegionalKmsApi } from '../aws/regional-kms.js';
import { validateStorePolicy } from '../policy.js';
import {
  ProviderConfigError,
  storeLabel,
  type CallOptions,
  type CiphertextBinding,
  type Properties,
  type Provider,
  type ProviderClient,
  type ProviderContext,
  type ServedRegion,
} from '../provider.js';
import { KmsDecryptor } from './decryptor.js';
import { awsErrorName, sdkKmsApi, type KmsApi } from './kms-api.js';

export { isCiphertext } from '../../crypto/ciphertext.js';
export { DecryptCache, type DecryptCacheOptions, type DecryptCacheStats } from '../decrypt-cache.js';
export { KmsDecryptor, translateKmsError, type ObserveFn } from './decryptor.js';
export { DataKey, KmsEncryptor, type EncryptOptions } from './encryptor.js';
export { sdkKmsApi, type KmsApi, type KmsDecryptApi, type KmsDecryptRequest } from './kms-api.js';

const lifecycle = storeLifecycle();

export const awsKmsProvider: Provider = {
  name: 'awsKms',
  capabilities: { entries: false, write: false, batchRead: false, decrypt: true, failover: true },
  validateStore: validateStorePolicy,
  async connect(store: AnyStore, ctx: ProviderContext, opts: CallOptions = {}): Promise<ProviderClient> {
    const spec = store.spec.provider.awsKms;
    if (!spec) throw new ProviderConfigError('spec.provider.awsKms is not set');
    if (typeof spec.region !== 'string' || spec.region === '') {
      throw new ProviderConfigError('spec.provider.awsKms.region is required');
    }
    await validateStorePolicy(store, ctx.policy, opts);
    const budget = storeBudgets.for(store, spec.requestsPerSecond);
    lifecycle.track(store);
    const configs = await raceAbort(
      awsRegionalConfigs(spec, store, ctx, opts),
      opts.signal,
      `${storeLabel(store)}: connect`,
    );
    const regions = new RegionalClients(
      configs.map(({ target, config }) => ({ target, client: sdkKmsApi(new KMSClient(config)) })),
      {
        store: storeLabel(store),
        provider: 'awsKms',
        settings: breakerSettings(spec.circuitBreaker),
        ...(ctx.onFailover ? { onFailover: (move) => ctx.onFailover?.(move) } : {}),
      },
    );
    // RegionalKmsApi and the client call observe as a plain function; keep the context as its receiver.
    const observe: ProviderContext['observe'] = (operation, call, region) => ctx.observe(operation, call, region);
    // Every KMS request (each region tried) waits for the store's request budget; each Decrypt attempt is
    // counted and timed with its region there, so the decryptor does not observe it again.
    const kms = new RegionalKmsApi(regions, (signal) => budget.take(signal), observe);
    return new AwsKmsClient(kms, new KmsDecryptor(kms), observe);
  },
  forgetStore: (store) => lifecycle.forgetStore(store),
  stats: () => lifecycle.stats(),
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

  // The store is used the wrong way, the client is fine: no rebuild (it would lose the data-key cache).
  async getValue(): Promise<string> {
    throw new ProviderConfigError(NO_ENTRIES, { clientUnusable: false });
  }

  async getProperties(): Promise<Properties> {
    throw new ProviderConfigError(NO_ENTRIES, { clientUnusable: false });
  }

  async find(): Promise<Map<string, Properties>> {
    throw new ProviderConfigError(NO_ENTRIES, { clientUnusable: false });
  }

  decrypt(ciphertext: string, binding: CiphertextBinding, opts: CallOptions = {}): Promise<string> {
    return this.decryptor.decrypt(ciphertext, binding, opts);
  }

  /**
   * ListKeys (one result): proves the endpoint answers and the credentials
   * authenticate. AccessDenied also proves both (AWS authenticates before it
   * authorizes), and a least-privilege policy that grants only kms:Decrypt on
   * some keys is normal, so it counts as healthy.
   */
  async check(opts: CallOptions = {}): Promise<void> {
    throwIfAborted(opts.signal, 'KMS ListKeys');
    try {
      await this.observe('ListKeys', () => raceAbort(this.kms.ping(opts), opts.signal, 'KMS ListKeys'));
    } catch (err) {
      if (awsErrorName(err) === 'AccessDeniedException') return;
      throw mapAwsError(err, {
        service: 'KMS',
        operation: 'ListKeys',
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
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
