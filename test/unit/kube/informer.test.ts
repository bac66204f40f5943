import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { DeadlineError } from '../../../src/api/errors.js';
import { KubeApiError, WatchIdleError, type KubeClient, type KubeObject } from '../../../src/kube/client.js';
import { Informer, objectKey } from '../../../src/kube/informer.js';
import { FakeApiServer } from './fake-apiserver.js';

const SECRETS = '/api/v1/namespaces/team-a/secrets';

type Event =
  | { type: 'add'; key: string; rv: string | undefined }
  | { type: 'update'; key: string; oldRv: string | undefined; rv: string | undefined }
  | { type: 'delete'; key: string };

const secret = (name: string, data: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: 'team-a', labels: { app: 'web' } },
  data,
});

async function waitFor(what: string, condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('Informer', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  let informer: Informer<KubeObject> | undefined;
  let events: Event[];

  const watches = () => server.requests.filter((r) => r.path === SECRETS && r.query.get('watch') === 'true');
  const lists = () => server.requests.filter((r) => r.path === SECRETS && r.query.get('watch') === null);

  /** An informer on SECRETS recording what its handlers see. */
  function newInformer(options: Partial<ConstructorParameters<typeof Informer<KubeObject>>[1]> = {}) {
    const inf = new Informer<KubeObject>(client, { path: SECRETS, ...options });
    inf.on({
      add: (obj) => events.push({ type: 'add', key: objectKey(obj), rv: obj.metadata.resourceVersion }),
      update: (oldObj, newObj) =>
        events.push({
          type: 'update',
          key: objectKey(newObj),
          oldRv: oldObj.metadata.resourceVersion,
          rv: newObj.metadata.resourceVersion,
        }),
      delete: (obj) => events.push({ type: 'delete', key: objectKey(obj) }),
    });
    informer = inf;
    return inf;
  }

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    server.declare(SECRETS);
    client = server.client();
    events = [];
  });

  afterEach(async () => {
    await informer?.stop();
    informer = undefined;
    client.close();
    await server.stop();
  });

  it('keys objects by namespace/name, or name when cluster-scoped', () => {
    expect(objectKey(secret('a'))).to.equal('team-a/a');
    expect(objectKey({ metadata: { name: 'node-1' } })).to.equal('node-1');
  });

  it('lists before start resolves, calling add for each object', async () => {
    server.put(SECRETS, secret('a'));
    server.put(SECRETS, secret('b'));
    const inf = newInformer();
    expect(inf.hasSynced()).to.equal(false);
    await inf.start();
    expect(inf.hasSynced()).to.equal(true);
    expect(inf.size).to.equal(2);
    expect(events.map((e) => `${e.type} ${e.key}`).sort()).to.deep.equal(['add team-a/a', 'add team-a/b']);
    expect(inf.get('team-a/a')?.metadata.name).to.equal('a');
    expect(inf.get('team-a/missing')).to.equal(undefined);
    expect(
      inf
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).to.deep.equal(['a', 'b']);
  });

  it('watches from the resourceVersion of the list, with bookmarks and the selectors', async () => {
    server.put(SECRETS, secret('a'));
    const listedAt = server.resourceVersion;
    const inf = newInformer({ labelSelector: 'app=web', fieldSelector: 'type=Opaque' });
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    const [list] = lists();
    expect(list?.query.get('labelSelector')).to.equal('app=web');
    expect(list?.query.get('fieldSelector')).to.equal('type=Opaque');
    const [watch] = watches();
    expect(watch?.query.get('resourceVersion')).to.equal(listedAt);
    expect(watch?.query.get('allowWatchBookmarks')).to.equal('true');
    expect(watch?.query.get('labelSelector')).to.equal('app=web');
    expect(watch?.query.get('fieldSelector')).to.equal('type=Opaque');
  });

  it('passes ADDED, MODIFIED and DELETED events to the handlers and the cache', async () => {
    server.put(SECRETS, secret('a'));
    const inf = newInformer();
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    events = [];

    const b = server.put(SECRETS, secret('b'));
    await waitFor('add b', () => events.length === 1);
    expect(events[0]).to.deep.equal({ type: 'add', key: 'team-a/b', rv: b.metadata.resourceVersion });
    expect(inf.get('team-a/b')?.metadata.resourceVersion).to.equal(b.metadata.resourceVersion);

    const b2 = server.put(SECRETS, secret('b', { k: 'dg==' }));
    await waitFor('update b', () => events.length === 2);
    expect(events[1]).to.deep.equal({
      type: 'update',
      key: 'team-a/b',
      oldRv: b.metadata.resourceVersion,
      rv: b2.metadata.resourceVersion,
    });
    expect(inf.get('team-a/b')?.data).to.deep.equal({ k: 'dg==' });

    server.remove(SECRETS, 'a');
    await waitFor('delete a', () => events.length === 3);
    expect(events[2]).to.deep.equal({ type: 'delete', key: 'team-a/a' });
    expect(inf.get('team-a/a')).to.equal(undefined);
    expect(inf.size).to.equal(1);
  });

  it('re-lists after a 410 ERROR event, emitting deletes for objects that vanished meanwhile', async () => {
    server.put(SECRETS, secret('stays'));
    server.put(SECRETS, secret('vanishes'));
    const changes = server.put(SECRETS, secret('changes'));
    const inf = newInformer();
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    events = [];

    // Events the informer never sees, then the server says its version is too old.
    server.remove(SECRETS, 'vanishes', true);
    const appears = server.put(SECRETS, secret('appears'), true);
    const changed = server.put(SECRETS, secret('changes', { k: 'dg==' }), true);
    const relistedAt = server.resourceVersion;
    server.expireWatches(SECRETS);

    await waitFor('the relist', () => events.length === 3);
    expect(events).to.have.deep.members([
      { type: 'delete', key: 'team-a/vanishes' },
      { type: 'add', key: 'team-a/appears', rv: appears.metadata.resourceVersion },
      {
        type: 'update',
        key: 'team-a/changes',
        oldRv: changes.metadata.resourceVersion,
        rv: changed.metadata.resourceVersion,
      },
    ]);
    expect(
      inf
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).to.deep.equal(['appears', 'changes', 'stays']);
    expect(lists()).to.have.length(2);

    // And it watches again, from the new list.
    await waitFor('a second watch', () => watches().length === 2 && server.watchCount(SECRETS) === 1);
    expect(watches()[1]?.query.get('resourceVersion')).to.equal(relistedAt);
    server.put(SECRETS, secret('later'));
    await waitFor('add later', () => events.some((e) => e.key === 'team-a/later'));
  });

  it('re-watches from the last version seen when a stream ends, without re-listing', async () => {
    const inf = newInformer();
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    const a = server.put(SECRETS, secret('a'));
    await waitFor('add a', () => events.length === 1);
    server.endWatches(SECRETS);
    await waitFor('a second watch', () => watches().length === 2);
    expect(watches()[1]?.query.get('resourceVersion')).to.equal(a.metadata.resourceVersion);
    expect(lists()).to.have.length(1);
  });

  it('moves its resourceVersion on with a BOOKMARK, without calling handlers', async () => {
    const inf = newInformer();
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    server.put(SECRETS, secret('elsewhere'), true);
    server.bookmark(SECRETS);
    const bookmarkedAt = server.resourceVersion;
    // Let the bookmark arrive before the stream ends.
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.endWatches(SECRETS);
    await waitFor('a second watch', () => watches().length === 2);
    expect(watches()[1]?.query.get('resourceVersion')).to.equal(bookmarkedAt);
    expect(events).to.deep.equal([]);
    expect(inf.size).to.equal(0);
  });

  it('reports a failing watch to onError, then re-lists to catch up', async () => {
    const errors: unknown[] = [];
    server.put(SECRETS, secret('a'));
    const inf = newInformer({
      onError: (err) => {
        errors.push(err);
        server.failPrefix = undefined;
      },
    });
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    server.failPrefix = SECRETS;
    server.remove(SECRETS, 'a', true);
    server.endWatches(SECRETS);
    await waitFor('the error', () => errors.length > 0);
    expect(String(errors[0])).to.include('HTTP 500');
    await waitFor('the relist', () => events.some((e) => e.type === 'delete'), 5_000);
    expect(inf.size).to.equal(0);
  });

  it('restarts a watch that brings nothing within the idle timeout, from the last version, without re-listing', async () => {
    const errors: unknown[] = [];
    const idle: unknown[] = [];
    server.put(SECRETS, secret('a'));
    const listedAt = server.resourceVersion;
    const inf = newInformer({
      watchIdleTimeoutMs: 300,
      onError: (err) => errors.push(err),
      onWatchIdle: (err) => idle.push(err),
    });
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    const firstAt = watches()[0]?.at ?? 0;
    await waitFor('a second watch', () => watches().length === 2);
    expect((watches()[1]?.at ?? 0) - firstAt).to.be.within(250, 1_500);
    expect(watches()[1]?.query.get('resourceVersion')).to.equal(listedAt);
    expect(lists()).to.have.length(1);
    // Told apart from failures: a quiet collection restarts like this every idle timeout.
    expect(idle[0]).to.be.instanceOf(WatchIdleError);
    expect(errors).to.deep.equal([]);
    // The silent stream is closed, not left behind, and the new one delivers.
    await waitFor('the old stream to close', () => server.watchCount(SECRETS) === 1);
    server.put(SECRETS, secret('b'));
    await waitFor('add b', () => events.some((e) => e.key === 'team-a/b'));
  });

  it('bounds each page of its list by a deadline', async () => {
    server.stallPrefix = SECRETS;
    const inf = newInformer({ listPageTimeoutMs: 200 });
    const started = Date.now();
    let caught: unknown;
    try {
      await inf.start();
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(DeadlineError);
    expect((caught as Error).message).to.equal(`GET ${SECRETS}: no answer within 0.2s`);
    expect(Date.now() - started).to.be.below(1_000);
    expect(inf.hasSynced()).to.equal(false);
  });

  it('waits as long as Retry-After says before trying again after a throttled watch', async () => {
    const errors: unknown[] = [];
    const inf = newInformer({
      onError: (err) => {
        errors.push(err);
        server.failPrefix = undefined;
      },
    });
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    server.failPrefix = SECRETS;
    server.failStatus = 429;
    server.failHeaders = { 'retry-after': '1' };
    server.endWatches(SECRETS);
    await waitFor('the relist', () => lists().length === 2, 5_000);
    const throttled = watches()[1];
    expect((errors[0] as KubeApiError).status).to.equal(429);
    expect((lists()[1]?.at ?? 0) - (throttled?.at ?? 0)).to.be.at.least(990);
  });

  it('drops managedFields without leaving the metadata a hash table (no delete), keeping every other field', async () => {
    // As the API server orders them: managedFields before fields a client added after it.
    const { metadata } = secret('a');
    server.put(SECRETS, {
      ...secret('a'),
      metadata: {
        name: metadata.name,
        namespace: metadata.namespace,
        managedFields: [{ manager: 'x' }],
        labels: { k: 'v' },
      },
    });
    const informer = newInformer();
    await informer.start();
    const cached = informer.get('team-a/a')?.metadata;
    expect(cached).to.deep.include({ name: 'a', namespace: 'team-a', labels: { k: 'v' } });
    expect(cached).to.not.have.property('managedFields');
    // V8 turns an object whose property was deleted from the middle into a dictionary (hundreds of bytes more).
    setFlagsFromString('--allow-natives-syntax');
    const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: unknown) => boolean;
    const deleted: Record<string, unknown> = { a: 1, managedFields: 2, b: 3 };
    delete deleted.managedFields;
    expect(hasFastProperties(deleted), 'the check itself').to.equal(false);
    expect(hasFastProperties(cached)).to.equal(true);
    await informer.stop();
  });

  it('applies the transform, or drops managedFields without one', async () => {
    server.put(SECRETS, { ...secret('a'), metadata: { ...secret('a').metadata, managedFields: [{ manager: 'x' }] } });
    const plain = newInformer();
    await plain.start();
    expect(plain.get('team-a/a')?.metadata).to.not.have.property('managedFields');
    await plain.stop();

    const trimmed = newInformer({
      transform: (obj) => ({ metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace } }),
    });
    await trimmed.start();
    expect(trimmed.get('team-a/a')).to.deep.equal({ metadata: { name: 'a', namespace: 'team-a' } });
  });

  it('stops watching on stop', async () => {
    const inf = newInformer();
    await inf.start();
    await waitFor('a watch', () => server.watchCount(SECRETS) === 1);
    await inf.stop();
    await waitFor('the watch to close', () => server.watchCount(SECRETS) === 0);
    server.put(SECRETS, secret('after'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events).to.deep.equal([]);
    expect(watches()).to.have.length(1);
  });
});
