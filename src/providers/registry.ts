import type { AnyStore, ProviderSpec } from '../api/types.js';
import { localProvider } from './local/index.js';
import type { Provider, ProviderClient, ProviderContext } from './provider.js';

/**
 * A provider whose module (and cloud SDK) is imported on its first connect:
 * an operator that only uses the local store never loads the AWS SDK (about
 * 30 MiB of memory).
 */
function lazy(name: string, load: () => Promise<Provider>): Provider {
  let loaded: Promise<Provider> | undefined;
  return {
    name,
    async connect(store: AnyStore, ctx: ProviderContext): Promise<ProviderClient> {
      return (await (loaded ??= load())).connect(store, ctx);
    },
  };
}

/** Every backend, by its field name under `spec.provider`: one line each. */
export const providers: ReadonlyMap<string, Provider> = new Map<string, Provider>([
  [localProvider.name, localProvider],
  ['awsKms', lazy('awsKms', async () => (await import('./aws-kms/index.js')).awsKmsProvider)],
  [
    'awsSecretsManager',
    lazy('awsSecretsManager', async () => (await import('./aws-secrets-manager/index.js')).awsSecretsManagerProvider),
  ],
  [
    'awsParameterStore',
    lazy('awsParameterStore', async () => (await import('./aws-parameter-store/index.js')).awsParameterStoreProvider),
  ],
]);

/** The one provider a store's spec names (CEL guarantees exactly one block). */
export function providerFor(spec: ProviderSpec): Provider {
  const names = Object.keys(spec).filter((k) => spec[k as keyof ProviderSpec] !== undefined);
  if (names.length !== 1) throw new Error(`spec.provider must set exactly one provider, found ${names.length}`);
  const provider = providers.get(names[0] ?? '');
  if (!provider) throw new Error(`unknown provider "${names[0]}"`);
  return provider;
}
