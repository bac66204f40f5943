// readShardLeases / readShardHolders, the one reader of "who holds each shard"
// (the benchmark, the e2e and integration tests use it): only the shard Leases
// of the group count, named as the coordinator names them, and a coordinator's
// holdings read back as it sees them.
import { expect } from 'chai';
import type { KubeClient } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { ShardCoordinator } from '../../../src/sharding/coordinator.js';
import {
  LABEL_SHARD_LEASE_GROUP,
  LABEL_SHARD_LEASE_ROLE,
  readShardHolders,
  readShardLeases,
  shardOfLeaseName,
} from '../../../src/sharding/lease-holders.js';
import { FakeApiServer } from '../kube/fake-apiserver.js';

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/secretsync/leases';
const S = 16;

describe('shard Lease holders', () => {
  let server: FakeApiServer;
  let client: KubeClient;

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    server.declare(LEASES);
    client = server.client();
  });

  afterEach(async () => {
    client.close();
    await server.stop();
  });

  const lease = (name: string, holder: string, role = 'shard', group = 'secretsync-shard', transitions = 0) =>
    server.put(LEASES, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, labels: { [LABEL_SHARD_LEASE_GROUP]: group, [LABEL_SHARD_LEASE_ROLE]: role } },
      spec: { holderIdentity: holder, leaseTransitions: transitions },
    });

  it('reads the shard Leases of the group only, by the names the coordinator gives them', async () => {
    lease('secretsync-shard-0', 'a', 'shard', 'secretsync-shard', 3);
    lease('secretsync-shard-1', '');
    lease('secretsync-shard-15', 'b');
    lease('secretsync-shard-16', 'a'); // beyond the shard count
    lease('secretsync-shard-01', 'a'); // not a name the coordinator writes
    lease('secretsync-shard-member-0123456789abcdef', 'a', 'member');
    lease('other-2', 'c', 'shard', 'other');

    const leases = await readShardLeases(client, 'secretsync', { shardCount: S });
    expect([...leases.values()].sort((x, y) => x.shard - y.shard)).to.deep.equal([
      { shard: 0, holder: 'a', transitions: 3 },
      { shard: 1, holder: '', transitions: 0 },
      { shard: 15, holder: 'b', transitions: 0 },
    ]);
    const holders = await readShardHolders(client, 'secretsync', { shardCount: S });
    expect([...holders].sort((x, y) => x[0] - y[0])).to.deep.equal([
      [0, 'a'],
      [15, 'b'],
    ]);
    expect(await readShardHolders(client, 'secretsync', { prefix: 'other', shardCount: S })).to.deep.equal(
      new Map([[2, 'c']]),
    );
  });

  it('parses only <prefix>-<n> with n below the shard count', () => {
    expect(shardOfLeaseName('p', 'p-0', 4)).to.equal(0);
    expect(shardOfLeaseName('p', 'p-3', 4)).to.equal(3);
    for (const name of ['p-4', 'p-03', 'p-', 'p-member-3', 'q-1', 'p1', 'p-1x'])
      expect(shardOfLeaseName('p', name, 4), name).to.equal(undefined);
  });

  it('reads back what a coordinator holds', async function () {
    this.timeout(10_000);
    const a = new ShardCoordinator(
      server.auth(),
      {
        namespace: 'secretsync',
        identity: 'a',
        shardCount: S,
        leaseDurationMs: 1_000,
        renewDeadlineMs: 800,
        retryPeriodMs: 100,
      },
      createLogger('error'),
    );
    try {
      await a.start();
      const deadline = Date.now() + 5_000;
      while (a.owned().size < S && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const holders = await readShardHolders(client, 'secretsync', { shardCount: S });
      expect(holders.size).to.equal(S);
      expect([...holders.values()].every((h) => h === 'a')).to.equal(true);
    } finally {
      await a.stop();
    }
    // A graceful stop clears the holder of every shard Lease.
    expect((await readShardHolders(client, 'secretsync', { shardCount: S })).size).to.equal(0);
  });
});
