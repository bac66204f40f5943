// The AWS providers' lifecycle hooks: what they keep per store (request budget,
// failover breakers) is reported by stats() and dropped by forgetStore(), each
// provider reporting only the stores it connected.
import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import type { AnyStore, AwsCommonSpec } from '../../../../src/api/types.js';
import { ProviderError, type Provider, type ProviderContext } from '../../../../src/providers/provider.js';
import { allProviderStats, providers } from '../../../../src/providers/registry.js';
import { rejectionOf } from '../../helpers/index.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ctx: ProviderContext = {
  storeNamespace: undefined,
  allowOperatorIdentityForNamespacedStores: false,
  policy: { allowedEndpoints: [], localStoreRoot: undefined },
  timeouts: { connectMs: 500, requestMs: 500 },
  observe: (_op, call) => call(),
  requestServiceAccountToken: async () => 'token',
  readSecretKey: async () => Buffer.from('testing'),
};

const auth = {
  secretRef: {
    accessKeyIdSecretRef: { name: 'aws', key: 'id', namespace: 'ops' },
    secretAccessKeySecretRef: { name: 'aws', key: 'secret', namespace: 'ops' },
  },
};

function store(name: string, block: 'awsSecretsManager' | 'awsParameterStore', spec: AwsCommonSpec): AnyStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'ClusterSecretStore',
    metadata: { name },
    spec: { provider: { [block]: spec } },
  };
}

describe('AWS providers: forgetStore and stats', () => {
  let closed: Server;
  let port: number;

  before(async () => {
    // A port that refuses every connection at once: a target that is down, without waiting.
    closed = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    port = (closed.address() as { port: number }).port;
  });
  after(() => closed.close());

  it('reports the budget and breakers of the stores a provider connected, and forgets them', async () => {
    // Through the registry, as the controller does: the lazy wrappers forward to the loaded modules.
    const awsSecretsManagerProvider = providers.get('awsSecretsManager') as Provider;
    const awsParameterStoreProvider = providers.get('awsParameterStore') as Provider;
    const down = `http://127.0.0.1:${port}`;
    const sm = store('lifecycle-sm', 'awsSecretsManager', {
      region: 'us-east-1',
      endpoint: down,
      auth,
      requestsPerSecond: 5,
      failover: [{ region: 'us-west-2', endpoint: down }],
    });
    const ps = store('lifecycle-ps', 'awsParameterStore', { region: 'us-east-1', endpoint: down, auth });
    const smClient = await awsSecretsManagerProvider.connect(sm, ctx);
    const psClient = await awsParameterStoreProvider.connect(ps, ctx);
    expect(await rejectionOf(smClient.getValue({ key: 'x' }))).to.be.instanceOf(ProviderError);

    const smStats = awsSecretsManagerProvider.stats?.() ?? {};
    expect(smStats.budgets?.map((b) => b.store)).to.deep.equal(['ClusterSecretStore lifecycle-sm']);
    expect(smStats.budgets?.[0]?.used).to.be.greaterThan(0);
    expect(smStats.circuits?.map((c) => [c.store, c.region])).to.deep.equal([
      ['ClusterSecretStore lifecycle-sm', 'us-east-1'],
      ['ClusterSecretStore lifecycle-sm', 'us-west-2'],
    ]);
    // The other provider reports only its own store: summed, each store counts once.
    expect(awsParameterStoreProvider.stats?.().budgets?.map((b) => b.store)).to.deep.equal([
      'ClusterSecretStore lifecycle-ps',
    ]);
    const all = allProviderStats();
    expect(all.budgets.filter((b) => b.store === 'ClusterSecretStore lifecycle-sm')).to.have.length(1);
    expect(all.circuits.filter((c) => c.store === 'ClusterSecretStore lifecycle-sm')).to.have.length(2);

    awsSecretsManagerProvider.forgetStore?.(sm);
    expect(awsSecretsManagerProvider.stats?.()).to.deep.equal({ budgets: [], circuits: [] });
    expect(awsParameterStoreProvider.stats?.().budgets).to.have.length(1);
    awsParameterStoreProvider.forgetStore?.(ps);
    await smClient.close();
    await psClient.close();
  });
});
