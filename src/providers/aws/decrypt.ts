// `decrypt.kms` on a Secrets Manager, Parameter Store or local block: a KMS
// client whose settings default, field by field, to the provider block's,
// exposed as the provider client's `decrypt` (the controller decides what to
// decrypt). With `failover`, a multi-Region key's ciphertext is decrypted by its
// replica in the next available region (see regional-kms.ts).
import { KMSClient } from '@aws-sdk/client-kms';
import type { AnyStore, AwsCommonSpec, KmsDecryptSpec } from '../../api/types.js';
import { KmsDecryptor } from '../aws-kms/decryptor.js';
import { sdkKmsApi } from '../aws-kms/kms-api.js';
import { storeLabel, type CallOptions, type ProviderContext } from '../provider.js';
import { awsRegionalConfigs, type RegionalConfig } from './client-config.js';
import { RegionalClients, breakerSettings } from './failover.js';
import { RegionalKmsApi } from './regional-kms.js';

export interface StoreKms {
  kms: RegionalKmsApi;
  decryptor: KmsDecryptor;
  close(): void;
}

/**
 * The KMS settings: `decrypt.kms` fields where set, else the provider block's.
 * `failover` is inherited only when `decrypt.kms` names neither a region nor an
 * endpoint of its own (the same KMS location as the block's); `circuitBreaker`
 * is always inherited.
 */
export function kmsSpec(provider: AwsCommonSpec, decrypt: KmsDecryptSpec): AwsCommonSpec {
  const kms = decrypt.kms ?? {};
  const sameLocation = kms.region === undefined && kms.endpoint === undefined;
  const failover = kms.failover ?? (sameLocation ? provider.failover : undefined);
  const circuitBreaker = kms.circuitBreaker ?? provider.circuitBreaker;
  return {
    region: kms.region ?? provider.region,
    endpoint: kms.endpoint ?? provider.endpoint,
    auth: kms.auth ?? provider.auth,
    roleArn: kms.roleArn ?? provider.roleArn,
    ...(failover !== undefined ? { failover } : {}),
    ...(circuitBreaker !== undefined ? { circuitBreaker } : {}),
  };
}

/**
 * A decryptor for the store, or undefined without `decrypt`. When the KMS
 * settings equal the provider block's, the provider's credentials are shared
 * (one STS session, one Secret read per region).
 */
export async function storeKms(
  provider: AwsCommonSpec,
  decrypt: KmsDecryptSpec | undefined,
  providerConfigs: RegionalConfig[],
  store: AnyStore,
  ctx: ProviderContext,
  opts: CallOptions = {},
): Promise<StoreKms | undefined> {
  if (!decrypt) return undefined;
  const spec = kmsSpec(provider, decrypt);
  const same =
    spec.region === provider.region &&
    spec.endpoint === provider.endpoint &&
    spec.auth === provider.auth &&
    spec.roleArn === provider.roleArn &&
    spec.failover === provider.failover;
  return kmsFor(spec, store, ctx, same ? providerConfigs : undefined, opts);
}

/** A (regional) KMS decryptor for these settings; `configs` when they are already built. */
export async function kmsFor(
  spec: AwsCommonSpec,
  store: AnyStore,
  ctx: ProviderContext,
  configs?: RegionalConfig[],
  opts: CallOptions = {},
): Promise<StoreKms> {
  const regional = configs ?? (await awsRegionalConfigs(spec, store, ctx, opts));
  const regions = new RegionalClients(
    regional.map(({ target, config }) => ({ target, client: sdkKmsApi(new KMSClient(config)) })),
    {
      store: storeLabel(store),
      provider: 'awsKms',
      settings: breakerSettings(spec.circuitBreaker),
      ...(ctx.onFailover ? { onFailover: (move) => ctx.onFailover?.(move) } : {}),
    },
  );
  // The API calls observe as a plain function: keep ctx as its receiver. Each Decrypt attempt is observed
  // there, with its region, so the decryptor does not observe it again.
  const observe: ProviderContext['observe'] = (operation, call, region) => ctx.observe(operation, call, region);
  const kms = new RegionalKmsApi(regions, undefined, observe);
  return { kms, decryptor: new KmsDecryptor(kms), close: () => kms.close() };
}
