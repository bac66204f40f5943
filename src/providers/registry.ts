import type { ProviderSpec } from '../api/types.js';
import { awsKmsProvider } from './aws-kms/index.js';
import { awsParameterStoreProvider } from './aws-parameter-store/index.js';
import { awsSecretsManagerProvider } from './aws-secrets-manager/index.js';
import { localProvider } from './local/index.js';
import type { Provider } from './provider.js';

/** Every backend, by its field name under `spec.provider`: one line each. */
export const providers: ReadonlyMap<string, Provider> = new Map<string, Provider>([
  [localProvider.name, localProvider],
  [awsKmsProvider.name, awsKmsProvider],
  [awsSecretsManagerProvider.name, awsSecretsManagerProvider],
  [awsParameterStoreProvider.name, awsParameterStoreProvider],
]);

/** The one provider a store's spec names (CEL guarantees exactly one block). */
export function providerFor(spec: ProviderSpec): Provider {
  const names = Object.keys(spec).filter((k) => spec[k as keyof ProviderSpec] !== undefined);
  if (names.length !== 1) throw new Error(`spec.provider must set exactly one provider, found ${names.length}`);
  const provider = providers.get(names[0] ?? '');
  if (!provider) throw new Error(`unknown provider "${names[0]}"`);
  return provider;
}
