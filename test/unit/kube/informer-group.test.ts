import { expect } from 'chai';
import type { KubeClient, KubeObject } from '../../../src/kube/client.js';
import { InformerGroup } from '../../../src/kube/informer-group.js';
import { FakeApiServer } from './fake-apiserver.js';

const SECRETS = '/api/v1/namespaces/team-a/secrets';

const secret = (name: string, shard: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: 'team-a', labels: { 'secretsync.io/shard': shard } },
});

async function waitFor(what: string, condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('InformerGroup: members per shard (sharded mode)', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  let group: InformerGroup<KubeObject>;
  let seen: string[];

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    server.declare(SECRETS);
    client = server.client();
    seen = [];
    for (const [name, shard] of [
      ['a', '0'],
      ['b', '0'],
      ['c', '1'],
      ['d', '2'],
    ] as const)
      server.put(SECRETS, secret(name, shard), true);
    group = new InformerGroup<KubeObject>(client, [SECRETS], {}, false);
    group.on({
      add: (o) => seen.push(`add ${o.metadata.name}`),
      delete: (o) => seen.push(`delete ${o.metadata.name}`),
    });
    group.onEvict((o) => seen.push(`evict ${o.metadata.name}`));
    await group.start();
  });

  afterEach(async () => {
    await group.stop();
    client.close();
    await server.stop();
  });

  it('starts empty, and a member added holds only what its selector selects (handlers registered before it included)', async () => {
    expect(group.size).to.equal(0);
    await group.addMember('0', 'secretsync.io/shard=0');
    expect(
      group
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).to.deep.equal(['a', 'b']);
    expect(seen.sort()).to.deep.equal(['add a', 'add b']);
    await group.addMember('2', 'secretsync.io/shard=2');
    expect(group.size).to.equal(3);
    expect(group.sizeOf('0')).to.equal(2);
    expect(group.get('team-a/d')?.metadata.name).to.equal('d');
    expect(group.get('team-a/c')).to.equal(undefined);
    expect(group.memberIds().sort()).to.deep.equal(['0', '2']);
  });

  it("follows its member's watch, and a removed member's objects are evicted, not deleted, and its watch ends", async () => {
    await group.addMember('0', 'secretsync.io/shard=0');
    await group.addMember('1', 'secretsync.io/shard=1');
    await waitFor('two watches', () => server.watchCount(SECRETS) === 2);
    server.put(SECRETS, secret('e', '1'));
    server.put(SECRETS, secret('f', '3'));
    await waitFor('e in the cache', () => group.get('team-a/e') !== undefined);
    expect(group.get('team-a/f')).to.equal(undefined);
    seen = [];
    await group.removeMember('1');
    expect(seen.sort()).to.deep.equal(['evict c', 'evict e']);
    expect(
      group
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).to.deep.equal(['a', 'b']);
    expect(group.hasMember('1')).to.equal(false);
    await waitFor('one watch', () => server.watchCount(SECRETS) === 1);
    // Gained again: listed afresh.
    seen = [];
    await group.addMember('1', 'secretsync.io/shard=1');
    expect(seen.sort()).to.deep.equal(['add c', 'add e']);
  });

  it('an object relabelled from one held member to another is changed, never deleted, and stays cached', async () => {
    const updates: string[] = [];
    group.on({
      update: (old, cur) =>
        updates.push(
          `${old.metadata.labels?.['secretsync.io/shard']}->${cur.metadata.labels?.['secretsync.io/shard']}`,
        ),
    });
    await group.addMember('0', 'secretsync.io/shard=0');
    await group.addMember('1', 'secretsync.io/shard=1');
    await waitFor('two watches', () => server.watchCount(SECRETS) === 2);
    seen = [];
    server.put(SECRETS, secret('a', '1'));
    await waitFor('a in member 1', () => group.sizeOf('1') === 2 && group.sizeOf('0') === 1);
    // The two watches are separate streams: when the ADDED on member 1 comes before the DELETED on member 0,
    // the group reports a change; the other way round, a delete and an add. Never a delete last.
    const aEvents = seen.filter((e) => e.endsWith(' a'));
    if (aEvents.length === 1) expect([aEvents, updates]).to.deep.equal([['add a'], ['1->1']]);
    else expect(aEvents).to.deep.equal(['delete a', 'add a']);
    expect(group.get('team-a/a')?.metadata.labels?.['secretsync.io/shard']).to.equal('1');
    // Moved out of every held member: now it is gone from the group.
    server.put(SECRETS, secret('a', '3'));
    await waitFor('a gone', () => group.get('team-a/a') === undefined);
    expect(seen).to.include('delete a');
  });

  it('adds members before start without listing, and lists them when the group starts', async () => {
    const later = new InformerGroup<KubeObject>(client, [SECRETS], {}, false);
    try {
      await later.addMember('2', 'secretsync.io/shard=2');
      expect(later.size).to.equal(0);
      await later.start();
      expect(later.list().map((o) => o.metadata.name)).to.deep.equal(['d']);
    } finally {
      await later.stop();
    }
  });
});
