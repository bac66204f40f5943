// The change router with the controller's side replaced by recorders (our own
// interfaces): changes reach only the index's readers, degradation moves the
// store's readers to the fallback interval with one Event per transition, and a
// source whose client was replaced or closed is no longer listened to.
import { expect } from 'chai';
import { API_VERSION, type AnyStore, type ManagedSecret } from '../../../src/api/types.js';
import { ChangeIndex } from '../../../src/controller/change-index.js';
import { FetchCache } from '../../../src/controller/fetch-cache.js';
import { ChangeRouter } from '../../../src/events/change-router.js';
import { createLogger } from '../../../src/observability/logger.js';
import type { ChangeListener, ProviderClient } from '../../../src/providers/provider.js';

const store = (events: boolean): AnyStore => ({
  apiVersion: API_VERSION,
  kind: 'SecretStore',
  metadata: { name: 'local', namespace: 'app', generation: 1 },
  spec: {
    provider: {
      local: {
        path: '/tmp/x',
        masterKeySecretRef: { name: 'mk' },
        ...(events ? { events: { watch: true as const, fallbackRefreshInterval: '30s' } } : {}),
      },
    },
  },
});

const ms = (name: string, key: string): ManagedSecret => ({
  apiVersion: API_VERSION,
  kind: 'ManagedSecret',
  metadata: { name, namespace: 'app' },
  spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'v', remoteRef: { key } }] },
});

function setUp(withEvents = true, sourceChanges: string[] = []) {
  const index = new ChangeIndex();
  for (const [n, k] of [
    ['a1', 'a'],
    ['a2', 'a'],
    ['b1', 'b'],
  ] as const)
    index.set(ms(n, k));
  const calls: string[] = [];
  const current = store(withEvents);
  const router = new ChangeRouter({
    index,
    fetchCache: new FetchCache(),
    storeOf: () => current,
    usersOf: () => ['ms/app/a1', 'ms/app/a2', 'ms/app/b1'],
    resync: (k) => calls.push(`resync ${k}`),
    reschedule: (k) => calls.push(`reschedule ${k}`),
    recheckStore: (k) => calls.push(`recheck ${k}`),
    emit: (_t, type, reason) => calls.push(`event ${type} ${reason}`),
    eventTarget: () => ({ apiVersion: API_VERSION, kind: 'SecretStore', name: 'local', namespace: 'app' }),
    log: createLogger('error'),
    onSourceChange: (storeKey, s, keys) =>
      sourceChanges.push(`${storeKey} ${s.metadata.name} ${keys === 'all' ? 'all' : keys.join(',')}`),
  });
  let listener: ChangeListener | undefined;
  let signal: AbortSignal | undefined;
  const client = {
    watchChanges(l: ChangeListener, s: AbortSignal) {
      listener = l;
      signal = s;
      return true;
    },
  } as unknown as ProviderClient;
  return { router, calls, current, client, listener: () => listener!, signal: () => signal! };
}

describe('ChangeRouter', () => {
  it('syncs only the readers of the changed keys', () => {
    const t = setUp();
    t.router.attach('ss/app/local', t.current, t.client);
    t.calls.length = 0;
    t.listener().changed(['a', 'unused']);
    expect(t.calls.sort()).to.deep.equal(['resync ms/app/a1', 'resync ms/app/a2']);
  });

  it("tells onSourceChange (the sharded relay) of its source's changes, after applying them, and no others", () => {
    const sourceChanges: string[] = [];
    const t = setUp(true, sourceChanges);
    t.router.attach('ss/app/local', t.current, t.client);
    t.listener().changed(['a', 'unused']);
    t.listener().changedAll();
    expect(sourceChanges).to.deep.equal(['ss/app/local local a,unused', 'ss/app/local local all']);
    // A change from elsewhere (the webhook, the relay itself) is not a source's: not told again.
    t.router.changed('ss/app/local', ['b'], 'relay');
    t.router.changedAll('ss/app/local', 'relay');
    expect(sourceChanges).to.have.length(2);
    const old = t.listener();
    t.router.detach('ss/app/local', t.client);
    old.changed(['a']);
    expect(sourceChanges).to.have.length(2);
  });

  it('starts no source for a store without events', () => {
    const t = setUp(false);
    t.router.attach('ss/app/local', t.current, t.client);
    expect(t.signal()).to.equal(undefined);
    expect(t.router.condition('ss/app/local', t.current)).to.equal(undefined);
  });

  it('degraded: condition True, the fallback interval, one Warning; flowing: back, one Normal', () => {
    const t = setUp();
    t.router.attach('ss/app/local', t.current, t.client);
    expect(t.router.condition('ss/app/local', t.current)?.status).to.equal('False');
    t.calls.length = 0;
    t.listener().degraded('QueueUnreachable', 'the queue does not answer');
    t.listener().degraded('QueueUnreachable', 'the queue does not answer');
    expect(t.router.fallbackMs('ss/app/local')).to.equal(30_000);
    const degraded = t.router.condition('ss/app/local', t.current);
    expect(degraded).to.include({ type: 'EventsDegraded', status: 'True', reason: 'QueueUnreachable' });
    expect(degraded?.message).to.include('refresh every 30s');
    expect(t.calls.filter((c) => c.startsWith('event'))).to.deep.equal(['event Warning EventsDegraded']);
    expect(t.calls.filter((c) => c.startsWith('reschedule'))).to.have.length(3);
    t.calls.length = 0;
    t.listener().flowing();
    expect(t.router.fallbackMs('ss/app/local')).to.equal(undefined);
    expect(t.calls.filter((c) => c.startsWith('event'))).to.deep.equal(['event Normal EventsRecovered']);
  });

  it('stops listening to a source once its client is closed or replaced', () => {
    const t = setUp();
    t.router.attach('ss/app/local', t.current, t.client);
    const old = t.listener();
    const oldSignal = t.signal();
    t.router.detach('ss/app/local', {} as ProviderClient); // another client: not this source
    expect(oldSignal.aborted).to.equal(false);
    t.router.detach('ss/app/local', t.client);
    expect(oldSignal.aborted).to.equal(true);
    t.calls.length = 0;
    old.changed(['a']);
    old.degraded('X', 'y');
    expect(t.calls).to.deep.equal([]);
    expect(t.router.fallbackMs('ss/app/local')).to.equal(undefined);
  });
});
