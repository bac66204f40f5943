// Every backend by its field name under `spec.provider`, and the one a store's
// spec names. The AWS providers are loaded on their first connect, their SDK
// one package per event-loop turn (aws/load-in-steps.ts); Vault has no SDK.
import type { AnyStore, ProviderSpec } from '../api/types.js';
import { localProvider } from './local/index.js';
import { vaultProvider } from './vault/index.js';
import { validateStorePolicy } from './policy.js';
import type {
  CallOptions,
  Provider,
  ProviderCapabilities,
  ProviderClient,
  ProviderContext,
  ProviderStats,
} from './provider.js';

/**
 * A provider whose module (and cloud SDK) is imported on its first connect:
 * an operator that only uses the local store never loads the AWS SDK (about
 * 30 MiB of memory). Its capabilities are declared here, since they must be
 * known without loading it; forgetStore and stats reach the module once it is
 * loaded (before that it has connected nothing, so it has nothing to forget or
 * report). validateStore is the same for every provider and needs no module.
 */
export function lazyProvider(
  name: string,
  capabilities: ProviderCapabilities,
  load: () => Promise<Provider>,
): Provider {
  let loading: Promise<Provider> | undefined;
  let loaded: Provider | undefined;
  const provider = async (): Promise<Provider> => {
    loading ??= load().then(
      (p) => {
        if (p.name !== name) throw new Error(`provider module for "${name}" exports "${p.name}"`);
        const keys = Object.keys(capabilities) as (keyof ProviderCapabilities)[];
        if (keys.some((k) => p.capabilities[k] !== capabilities[k])) {
          throw new Error(`provider "${name}" declares other capabilities than the registry`);
        }
        loaded = p;
        return p;
      },
      (err: unknown) => {
        // A failed import may succeed later (a transient file-system error): do not keep the failure.
        loading = undefined;
        throw err;
      },
    );
    return loading;
  };
  return {
    name,
    capabilities,
    validateStore: (store: AnyStore, policy, opts?: CallOptions) => validateStorePolicy(store, policy, opts),
    async connect(store: AnyStore, ctx: ProviderContext, opts?: CallOptions): Promise<ProviderClient> {
      return (await provider()).connect(store, ctx, opts);
    },
    forgetStore(store: AnyStore): void {
      loaded?.forgetStore?.(store);
    },
    stats(): ProviderStats {
      return loaded?.stats?.() ?? {};
    },
  };
}

/** A name → provider map; two providers under one name is a programming error, refused at start. */
export function providerRegistry(list: readonly Provider[]): ReadonlyMap<string, Provider> {
  const map = new Map<string, Provider>();
  for (const provider of list) {
    if (map.has(provider.name)) throw new Error(`two providers are named "${provider.name}"`);
    map.set(provider.name, provider);
  }
  return map;
}

const AWS_STORE = { entries: true, write: true, batchRead: true, decrypt: true, failover: true };

/** Every backend, by its field name under `spec.provider`: one line each. */
export const providers: ReadonlyMap<string, Provider> = providerRegistry([
  localProvider,
  lazyProvider('awsKms', { entries: false, write: false, batchRead: false, decrypt: true, failover: true }, async () =>
    (await import('./aws/load-in-steps.js')).loadAwsProvider('awsKms'),
  ),
  lazyProvider('awsSecretsManager', AWS_STORE, async () =>
    (await import('./aws/load-in-steps.js')).loadAwsProvider('awsSecretsManager'),
  ),
  lazyProvider('awsParameterStore', AWS_STORE, async () =>
    (await import('./aws/load-in-steps.js')).loadAwsProvider('awsParameterStore'),
  ),
  // No SDK to defer: Vault is plain HTTP.
  vaultProvider,
]);

/** The one provider a store's spec names (CEL guarantees exactly one block). */
export function providerFor(spec: ProviderSpec): Provider {
  const names = Object.keys(spec).filter((k) => spec[k as keyof ProviderSpec] !== undefined);
  if (names.length !== 1) throw new Error(`spec.provider must set exactly one provider, found ${names.length}`);
  const provider = providers.get(names[0] ?? '');
  if (!provider) throw new Error(`unknown provider "${names[0]}"`);
  return provider;
}

/** Every provider's numbers for /metrics, together (a store is reported by the provider that connected it). */
export function allProviderStats(): Required<ProviderStats> {
  const out: Required<ProviderStats> = { budgets: [], circuits: [] };
  for (const provider of providers.values()) {
    const stats = provider.stats?.() ?? {};
    out.budgets.push(...(stats.budgets ?? []));
    out.circuits.push(...(stats.circuits ?? []));
  }
  return out;
}
