import { expect } from 'chai';
import { API_VERSION } from '../../../src/api/types.js';
import { ClusterCache } from '../../../src/controller/caches.js';
import { queueKey } from '../../../src/controller/keys.js';
import type { KubeClient, KubeObject } from '../../../src/kube/client.js';
import { LABEL_SHARD } from '../../../src/sharding/ownership.js';
import { FakeApiServer } from '../kube/fake-apiserver.js';

const GROUP = `/apis/${API_VERSION}`;
const MANAGED_SECRETS = `${GROUP}/managedsecrets`;
const SECRETS = '/api/v1/secrets';

const managedSecret = (name: string, shard: number): KubeObject => ({
  apiVersion: API_VERSION,
  kind: 'ManagedSecret',
  metadata: { name, namespace: 'team-a', labels: { [LABEL_SHARD]: String(shard) } },
  spec: { storeRef: { name: 'store' } },
});

const secret = (name: string, shard: number): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: 'team-a', labels: { 'secretsync.io/managed': 'true', [LABEL_SHARD]: String(shard) } },
});

describe('ClusterCache in sharded mode', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  let cache: ClusterCache;

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    for (const path of [
      MANAGED_SECRETS,
      SECRETS,
      `${GROUP}/secretstores`,
      `${GROUP}/clustersecretstores`,
      '/api/v1/namespaces',
    ])
      server.declare(path);
    for (const [name, shard] of [
      ['a', 0],
      ['b', 1],
      ['c', 2],
    ] as const) {
      server.put(MANAGED_SECRETS, managedSecret(name, shard), true);
      server.put(SECRETS, secret(name, shard), true);
    }
    client = server.client();
    cache = new ClusterCache(client, {
      namespaces: [],
      maxTemplateBytes: 1 << 20,
      onWatchError: () => {},
      shardCount: 4,
    });
    await cache.start();
  });

  afterEach(async () => {
    await cache.stop();
    client.close();
    await server.stop();
  });

  const names = (objs: KubeObject[]) => objs.map((o) => o.metadata.name).sort();

  it('holds nothing of the sharded kinds until shards are set, then exactly the held shards', async () => {
    expect(cache.managedSecrets.size + cache.secrets.size).to.equal(0);
    await cache.setShards(new Set([0, 2]));
    expect(cache.cachedShards()).to.deep.equal([0, 2]);
    expect(names(cache.managedSecrets.list())).to.deep.equal(['a', 'c']);
    expect(names(cache.secrets.list())).to.deep.equal(['a', 'c']);
    expect([...cache.usersOf(queueKey.secretStore('team-a', 'store'))].sort()).to.deep.equal([
      queueKey.managedSecret('team-a', 'a'),
      queueKey.managedSecret('team-a', 'c'),
    ]);
  });

  it("drops a lost shard's objects and store users, and lists a gained one", async () => {
    await cache.setShards(new Set([0, 2]));
    await cache.setShards(new Set([1, 2]));
    expect(cache.cachedShards()).to.deep.equal([1, 2]);
    expect(names(cache.managedSecrets.list())).to.deep.equal(['b', 'c']);
    expect(names(cache.secrets.list())).to.deep.equal(['b', 'c']);
    expect([...cache.usersOf(queueKey.secretStore('team-a', 'store'))].sort()).to.deep.equal([
      queueKey.managedSecret('team-a', 'b'),
      queueKey.managedSecret('team-a', 'c'),
    ]);
    await cache.setShards(new Set());
    expect(cache.managedSecrets.size + cache.secrets.size).to.equal(0);
    expect(cache.usersOf(queueKey.secretStore('team-a', 'store'))).to.deep.equal([]);
  });

  it("lists a gained shard's Secrets before its ManagedSecrets (whose add handlers queue their syncs)", async () => {
    const secretsAtAdd: number[] = [];
    cache.managedSecrets.on({ add: () => secretsAtAdd.push(cache.secrets.size) });
    await cache.setShards(new Set([1]));
    expect(secretsAtAdd).to.deep.equal([1]);
  });

  it('applies changes one after another, the last one winning', async () => {
    await Promise.all([cache.setShards(new Set([0])), cache.setShards(new Set([1])), cache.setShards(new Set([2]))]);
    expect(cache.cachedShards()).to.deep.equal([2]);
    expect(names(cache.managedSecrets.list())).to.deep.equal(['c']);
  });
});
