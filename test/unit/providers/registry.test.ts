// The provider registry: one provider per name, capabilities known without
// loading a provider, lifecycle hooks that reach a lazily loaded provider.
import { expect } from 'chai';
import type { AnyStore } from '../../../src/api/types.js';
import { lazyProvider, providerRegistry, providers } from '../../../src/providers/registry.js';
import type { Provider, ProviderCapabilities, ProviderClient } from '../../../src/providers/provider.js';
import { rejectionOf } from '../helpers/index.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const caps: ProviderCapabilities = { entries: true, write: false, batchRead: false, decrypt: false, failover: false };

function fake(name: string, forgotten: string[] = []): Provider {
  return {
    name,
    capabilities: caps,
    validateStore: async () => undefined,
    connect: async () => ({}) as ProviderClient,
    forgetStore: (store) => forgotten.push(store.metadata.name),
    stats: () => ({ budgets: [{ store: name, waiting: 1, used: 2 }] }),
  };
}

const store = { kind: 'ClusterSecretStore', metadata: { name: 's' }, spec: { provider: {} } } as unknown as AnyStore;

describe('provider registry', () => {
  it('refuses two providers with one name', () => {
    expect(() => providerRegistry([fake('a'), fake('b'), fake('a')])).to.throw(/two providers are named "a"/);
    expect([...providerRegistry([fake('a'), fake('b')]).keys()]).to.deep.equal(['a', 'b']);
  });

  it('declares every provider’s capabilities; the AWS ones match their modules', async () => {
    expect(providers.get('awsKms')?.capabilities).to.deep.include({ entries: false, write: false, decrypt: true });
    expect(providers.get('local')?.capabilities).to.deep.include({ entries: true, write: true, failover: false });
    for (const [name, load] of [
      ['awsKms', async () => (await import('../../../src/providers/aws-kms/index.js')).awsKmsProvider],
      [
        'awsSecretsManager',
        async () => (await import('../../../src/providers/aws-secrets-manager/index.js')).awsSecretsManagerProvider,
      ],
      [
        'awsParameterStore',
        async () => (await import('../../../src/providers/aws-parameter-store/index.js')).awsParameterStoreProvider,
      ],
    ] as const) {
      expect((await load()).capabilities, name).to.deep.equal(providers.get(name)?.capabilities);
    }
  });

  it('a lazy provider forwards forgetStore and stats once loaded, and reports nothing before', async () => {
    const forgotten: string[] = [];
    let loads = 0;
    const lazy = lazyProvider('p', caps, async () => {
      loads++;
      return fake('p', forgotten);
    });
    lazy.forgetStore?.(store);
    expect(lazy.stats?.()).to.deep.equal({});
    expect(loads).to.equal(0);
    await lazy.connect(store, {} as never);
    await lazy.connect(store, {} as never);
    expect(loads).to.equal(1);
    lazy.forgetStore?.(store);
    expect(forgotten).to.deep.equal(['s']);
    expect(lazy.stats?.()).to.deep.equal({ budgets: [{ store: 'p', waiting: 1, used: 2 }] });
  });

  it('a lazy provider refuses a module that is not what the registry declared', async () => {
    const wrongName = lazyProvider('p', caps, async () => fake('q'));
    expect((await rejectionOf(wrongName.connect(store, {} as never))).message).to.contain('exports "q"');
    const wrongCaps = lazyProvider('p', { ...caps, write: true }, async () => fake('p'));
    expect((await rejectionOf(wrongCaps.connect(store, {} as never))).message).to.contain('other capabilities');
  });
});
