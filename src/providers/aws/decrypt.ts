// `decrypt.kms` on a Secrets Manager or Parameter Store block: a KMS client
// whose settings default, field by field, to the provider block's, exposed as
// the provider client's `decrypt` (the controller decides what to decrypt).
import { KMSClient } from '@aws-sdk/client-kms';
import type { AnyStore, AwsCommonSpec, KmsDecryptSpec } from '../../api/types.js';
import { KmsDecryptor } from '../aws-kms/index.js';
import type { ProviderContext } from '../provider.js';
import { awsClientConfig, type AwsClientConfig } from './client-config.js';

export interface StoreKms {
  client: KMSClient;
  decryptor: KmsDecryptor;
}

/** The KMS settings: `decrypt.kms` fields where set, else the provider block's. */
export function kmsSpec(provider: AwsCommonSpec, decrypt: KmsDecryptSpec): AwsCommonSpec {
  const kms = decrypt.kms ?? {};
  return {
    region: kms.region ?? provider.region,
    endpoint: kms.endpoint ?? provider.endpoint,
    auth: kms.auth ?? provider.auth,
    roleArn: kms.roleArn ?? provider.roleArn,
  };
}

/**
 * A decryptor for the store, or undefined without `decrypt`. When the KMS
 * settings equal the provider block's, the provider's credentials are shared
 * (one STS session, one Secret read).
 */
export async function storeKms(
  provider: AwsCommonSpec,
  decrypt: KmsDecryptSpec | undefined,
  providerConfig: AwsClientConfig,
  store: AnyStore,
  ctx: ProviderContext,
): Promise<StoreKms | undefined> {
  if (!decrypt) return undefined;
  const spec = kmsSpec(provider, decrypt);
  const same =
    spec.region === provider.region &&
    spec.endpoint === provider.endpoint &&
    spec.auth === provider.auth &&
    spec.roleArn === provider.roleArn;
  const config = same ? providerConfig : await awsClientConfig(spec, store, ctx);
  const client = new KMSClient(config);
  // The decryptor calls observe as a plain function: keep ctx as its receiver.
  const observe: ProviderContext['observe'] = (operation, call) => ctx.observe(operation, call);
  return { client, decryptor: new KmsDecryptor(client, observe) };
}
