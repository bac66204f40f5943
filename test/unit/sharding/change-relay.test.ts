// The change relay's bounds and bookkeeping, against an in-memory fake of our
// own RelayObjectClient (optimistic concurrency like the API server's): ring
// size, expiry, batching, retry on conflict, whole-store fallback, and which
// entries a replica applies (not its own, not the past, gaps noticed).
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/observability/logger.js';
import { keysOfNotifiedSecret } from '../../../src/events/ibm-event-notifications.js';
import {
  ChangeRelay,
  ibmAliasesOfKey,
  ibmRelayForms,
  parseRelayEntries,
  type RelayEntry,
  type RelayObject,
  type RelayObjectClient,
  type RelayTarget,
  type RelayWrite,
} from '../../../src/sharding/change-relay.js';

const silent = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));
const hashKey = Buffer.alloc(32, 7);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Waits (up to 3 s: the machine may be loaded) until `done` holds. */
async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** One relay object in memory; every write bumps the version, a stale version gets a conflict. */
class FakeRelayObject implements RelayObjectClient {
  object: RelayObject | undefined;
  writes = 0;
  /** Conflicts to answer before a write goes through (another replica wrote first). */
  conflicts = 0;
  /** Every write throws (the API server is unreachable). */
  failing = false;
  private version = 0;
  readonly watchers: ChangeRelay[] = [];

  get(): Promise<RelayObject | undefined> {
    if (this.failing) return Promise.reject(new Error('unreachable'));
    return Promise.resolve(this.object && { ...this.object, entries: [...this.object.entries] });
  }

  create(entries: RelayEntry[]): Promise<RelayWrite> {
    if (this.object) return Promise.resolve({ ok: false, reason: 'exists' });
    return this.write(entries);
  }

  replace(resourceVersion: string, entries: RelayEntry[]): Promise<RelayWrite> {
    if (!this.object || this.object.resourceVersion !== resourceVersion)
      return Promise.resolve({ ok: false, reason: 'conflict' });
    if (this.conflicts > 0) {
      this.conflicts -= 1;
      // Someone else's write: the version moves on.
      this.object = { resourceVersion: String(++this.version), entries: this.object.entries };
      return Promise.resolve({ ok: false, reason: 'conflict' });
    }
    return this.write(entries);
  }

  private write(entries: RelayEntry[]): Promise<RelayWrite> {
    if (this.failing) return Promise.reject(new Error('unreachable'));
    this.writes += 1;
    // Through JSON, as the ConfigMap stores it.
    this.object = { resourceVersion: String(++this.version), entries: parseRelayEntries(JSON.stringify(entries)) };
    const object = this.object;
    // The watch: every replica hears of the write.
    for (const w of this.watchers) w.observe({ ...object, entries: [...object.entries] });
    return Promise.resolve({ ok: true, object });
  }
}

interface Recorded {
  changed: { store: string; keys: string[]; unmatched: boolean }[];
  all: string[];
  missed: number;
}

function replica(
  fake: FakeRelayObject,
  identity: string,
  index: Record<string, string[]> = {},
  options: Partial<ConstructorParameters<typeof ChangeRelay>[0]> = {},
): { relay: ChangeRelay; seen: Recorded } {
  const seen: Recorded = { changed: [], all: [], missed: 0 };
  const target: RelayTarget = {
    changed: (store, keys, unmatched) => seen.changed.push({ store, keys: [...keys].sort(), unmatched }),
    changedAll: (store) => seen.all.push(store),
    missed: () => (seen.missed += 1),
    keysOf: (store) => index[store] ?? [],
  };
  const relay = new ChangeRelay({ client: fake, identity, hashKey, target, log: silent, batchMs: 20, ...options });
  fake.watchers.push(relay);
  relay.start();
  return { relay, seen };
}

describe('ChangeRelay', function () {
  // The waits are short; a loaded machine may stretch them past mocha's 2 s.
  this.timeout(10_000);
  it('relays hashed keys: the other replica gets the keys its index knows, the publisher nothing back', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a');
    const b = replica(fake, 'b', { 'ss/ns/local': ['db', 'api', 'other'] });
    a.relay.publish('ss/ns/local', ['db', 'api']);
    await until('the entry at B', () => b.seen.changed.length > 0);
    expect(b.seen.changed).to.deep.equal([{ store: 'ss/ns/local', keys: ['api', 'db'], unmatched: false }]);
    expect(a.seen.changed).to.deep.equal([]);
    const text = JSON.stringify(fake.object?.entries);
    expect(text).to.not.include('"db"');
    expect(text).to.not.include('api');
  });

  it('says when a hash matches no key of the index (an entry only a find may list)', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a');
    const b = replica(fake, 'b', { 'ss/ns/local': ['db'] });
    a.relay.publish('ss/ns/local', ['db', 'team/new-entry']);
    await until('the entry at B', () => b.seen.changed.length > 0);
    expect(b.seen.changed).to.deep.equal([{ store: 'ss/ns/local', keys: ['db'], unmatched: true }]);
  });

  it('batches a burst into one write per batch interval, one entry per store', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a', {}, { batchMs: 50 });
    for (let i = 0; i < 100; i++) a.relay.publish(i % 2 === 0 ? 'ss/ns/one' : 'ss/ns/two', [`key-${i % 10}`]);
    await until('a write', () => fake.writes > 0);
    await sleep(100);
    expect(fake.writes).to.equal(1);
    expect(fake.object?.entries.map((e) => [e.store, e.keys?.length])).to.deep.equal([
      ['ss/ns/one', 5],
      ['ss/ns/two', 5],
    ]);
    // A second burst waits for the interval since the last write.
    a.relay.publish('ss/ns/one', ['x']);
    a.relay.publish('ss/ns/one', ['y']);
    await until('a second write', () => fake.writes > 1);
    await sleep(100);
    expect(fake.writes).to.equal(2);
    expect(fake.object?.entries.at(-1)?.keys).to.have.length(2);
  });

  it('keeps the newest maxEntries entries and drops those older than maxAgeMs', async () => {
    const fake = new FakeRelayObject();
    let now = 1_000_000;
    const a = replica(fake, 'a', {}, { batchMs: 1, maxEntries: 8, maxAgeMs: 60_000, now: () => now });
    for (let i = 0; i < 12; i++) {
      a.relay.publish(`ss/ns/s${i}`, ['k']);
      // One store per write: a batch of several would be relayed as every store (more than a quarter of the ring).
      await until(`s${i} written`, () => fake.object?.entries.at(-1)?.store === `ss/ns/s${i}`);
    }
    await until('the last store written', () => fake.object?.entries.at(-1)?.store === 'ss/ns/s11');
    expect(fake.object?.entries.map((e) => e.store)).to.deep.equal(
      [4, 5, 6, 7, 8, 9, 10, 11].map((i) => `ss/ns/s${i}`),
    );
    now += 61_000;
    a.relay.publish('ss/ns/late', ['k']);
    await until('the late store written', () => fake.object?.entries.at(-1)?.store === 'ss/ns/late');
    expect(fake.object?.entries.map((e) => e.store)).to.deep.equal(['ss/ns/late']);
  });

  it('relays a store whole when a batch has more keys than maxKeysPerEntry', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a', {}, { maxKeysPerEntry: 3 });
    const b = replica(fake, 'b', { 'ss/ns/local': ['k1'] });
    a.relay.publish('ss/ns/local', ['k1', 'k2', 'k3', 'k4']);
    await until('the entry at B', () => b.seen.all.length > 0);
    expect(fake.object?.entries).to.have.length(1);
    expect(fake.object?.entries[0]?.all).to.equal(true);
    expect(fake.object?.entries[0]?.keys).to.equal(undefined);
    expect(b.seen.all).to.deep.equal(['ss/ns/local']);
    expect(b.seen.changed).to.deep.equal([]);
  });

  it('relays a batch of more stores than a quarter of the ring as one entry for every store', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a', {}, { maxEntries: 16, batchMs: 50 });
    const b = replica(fake, 'b');
    a.relay.publish('ss/ns/first', ['k']);
    await until('the first entry at B', () => b.seen.changed.length > 0);
    for (let i = 0; i < 3; i++) a.relay.publish(`ss/ns/s${i}`, ['k']);
    await until('three stores at B', () => b.seen.changed.length === 4);
    for (let i = 0; i < 20; i++) a.relay.publish(`ss/ns/many${i}`, ['k']);
    await until('the every-store entry at B', () => b.seen.missed > 0);
    expect(fake.object?.entries.at(-1)).to.include({ store: '*', all: true });
    expect(fake.object?.entries).to.have.length(5);
    expect(b.seen.missed).to.equal(1);
    expect(b.seen.changed).to.have.length(4);
  });

  it('reads the object again and retries on a conflict', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a');
    const b = replica(fake, 'b', { 'ss/ns/local': ['db'] });
    a.relay.publish('ss/ns/x', ['k']);
    await until('a write', () => fake.writes > 0);
    fake.conflicts = 2;
    a.relay.publish('ss/ns/local', ['db']);
    await until('the entry at B', () => b.seen.changed.some((c) => c.store === 'ss/ns/local'));
    expect(fake.writes).to.equal(2);
    expect(b.seen.changed.filter((c) => c.store === 'ss/ns/local')).to.deep.equal([
      { store: 'ss/ns/local', keys: ['db'], unmatched: false },
    ]);
  });

  it('falls back to the whole store when writes fail, and publishes it once the API answers again', async () => {
    const fake = new FakeRelayObject();
    const events: string[] = [];
    const a = replica(fake, 'a', {}, { maxRetryDelayMs: 50, onEvent: (what) => events.push(what) });
    const b = replica(fake, 'b', { 'ss/ns/local': ['db'] });
    fake.failing = true;
    a.relay.publish('ss/ns/local', ['db']);
    await until('a failed write', () => events.includes('write_failed'));
    expect(b.seen.changed).to.deep.equal([]);
    fake.failing = false;
    await until('the entry at B', () => b.seen.all.length > 0);
    expect(b.seen.all).to.deep.equal(['ss/ns/local']);
    expect(events).to.include('fallback');
    expect(events).to.include('published');
  });

  it('does not replay what the object held before start; applies what comes after', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a');
    a.relay.publish('ss/ns/local', ['db']);
    await until('a write', () => fake.writes > 0);
    // A replica that starts now: its informer's first list brings the object, then start().
    const seen: Recorded = { changed: [], all: [], missed: 0 };
    const late = new ChangeRelay({
      client: fake,
      identity: 'late',
      hashKey,
      log: silent,
      target: {
        changed: (store, keys, unmatched) => seen.changed.push({ store, keys, unmatched }),
        changedAll: (store) => seen.all.push(store),
        missed: () => (seen.missed += 1),
        keysOf: () => ['db'],
      },
    });
    late.observe(await fake.get());
    late.start();
    fake.watchers.push(late);
    expect(seen.changed).to.deep.equal([]);
    a.relay.publishAll('ss/ns/local');
    await until('the entry at the late replica', () => seen.all.length > 0);
    expect(seen.all).to.deep.equal(['ss/ns/local']);
    expect(seen.changed).to.deep.equal([]);
    expect(seen.missed).to.equal(0);
  });

  it('notices entries that left the ring before it saw them', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a', {}, { batchMs: 1, maxEntries: 4 });
    const b = replica(fake, 'b');
    a.relay.publish('ss/ns/s0', ['k']);
    await until('the entry at B', () => b.seen.changed.length > 0);
    // B stops hearing the watch (a broken connection) while A writes more than the ring holds.
    fake.watchers.splice(fake.watchers.indexOf(b.relay), 1);
    for (let i = 1; i < 7; i++) {
      a.relay.publish(`ss/ns/s${i}`, ['k']);
      // One store per write: a batch of several would be relayed as every store (more than a quarter of the ring).
      await until(`s${i} written`, () => fake.object?.entries.at(-1)?.store === `ss/ns/s${i}`);
    }
    await until('the last store written', () => fake.object?.entries.at(-1)?.store === 'ss/ns/s6');
    b.relay.observe(await fake.get());
    expect(b.seen.missed).to.equal(1);
    // What is still there is applied as well (s0 came before the watch broke).
    expect(b.seen.changed.map((c) => c.store)).to.deep.equal([
      'ss/ns/s0',
      'ss/ns/s3',
      'ss/ns/s4',
      'ss/ns/s5',
      'ss/ns/s6',
    ]);
  });

  it('matches an IBM notification on the receiving replica as keysOfNotifiedSecret matches it on the one that got it', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a');
    const index = [
      'payments/arbitrary/db-cred',
      'default/arbitrary/db-cred',
      'payments/username_password/db-cred',
      '0B3C5A6E-1111-4222-8333-944455556666',
      'db-cred',
      'payments/arbitrary/db-cred-2',
      'unrelated',
    ];
    const b = replica(fake, 'b', { 'css/ibm': index }, {});
    // The receiver's aliases, as the manager gives them for an IBM store.
    const seen: Recorded = { changed: [], all: [], missed: 0 };
    const ibm = new ChangeRelay({
      client: fake,
      identity: 'ibm-receiver',
      hashKey,
      log: silent,
      target: {
        changed: (store, keys, unmatched) => seen.changed.push({ store, keys: [...keys].sort(), unmatched }),
        changedAll: (store) => seen.all.push(store),
        missed: () => (seen.missed += 1),
        keysOf: () => index,
        aliasesOf: (_store, key) => ibmAliasesOfKey(key),
      },
    });
    ibm.start();
    fake.watchers.push(ibm);
    const secret = { id: '0b3c5a6e-1111-4222-8333-944455556666', name: 'db-cred', groupId: 'f00-group-id' };
    a.relay.publish('css/ibm', ibmRelayForms(secret, 'arbitrary'));
    await until('the entry at the receiver', () => seen.changed.length > 0);
    const expected = keysOfNotifiedSecret(secret, 'arbitrary', index).filter((k) => index.includes(k));
    expect(new Set(expected).size).to.equal(4);
    expect(seen.changed[0]!.keys).to.deep.equal([...new Set(expected)].sort());
    expect(seen.changed[0]!.keys).to.not.include('payments/username_password/db-cred');
    expect(seen.changed[0]!.keys).to.not.include('unrelated');
    // Without aliases (not an IBM store), the forms match no key.
    expect(b.seen.changed[0]!.keys).to.deep.equal([]);
    expect(b.seen.changed[0]!.unmatched).to.equal(true);
  });

  it('sees no gap after a failed write (the retry takes the same numbers)', async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a', {}, { maxRetryDelayMs: 30 });
    const b = replica(fake, 'b', { 'ss/ns/local': ['db'] });
    a.relay.publish('ss/ns/one', ['k']);
    await until('the first entry at B', () => b.seen.changed.length > 0);
    fake.failing = true;
    a.relay.publish('ss/ns/local', ['db']);
    await sleep(60);
    fake.failing = false;
    await until('the retried entry at B', () => b.seen.all.length > 0);
    expect(b.seen.all).to.deep.equal(['ss/ns/local']);
    expect(b.seen.missed).to.equal(0);
    expect(fake.object?.entries.map((e) => e.seq)).to.deep.equal([1, 2]);
  });

  it("notices a publisher's entries pushed out of the ring by others' before it saw them", async () => {
    const fake = new FakeRelayObject();
    const a = replica(fake, 'a', {}, { batchMs: 1, maxEntries: 4 });
    const flood = replica(fake, 'flood', {}, { batchMs: 1, maxEntries: 4 });
    const b = replica(fake, 'b');
    a.relay.publish('ss/ns/a1', ['k']);
    await until('a1 at B', () => b.seen.changed.length > 0);
    fake.watchers.splice(fake.watchers.indexOf(b.relay), 1);
    a.relay.publish('ss/ns/a2', ['k']);
    await until('a2 written', () => fake.object?.entries.some((e) => e.store === 'ss/ns/a2') === true);
    for (let i = 0; i < 4; i++) {
      flood.relay.publish(`ss/ns/f${i}`, ['k']);
      await until(`f${i} written`, () => fake.object?.entries.some((e) => e.store === `ss/ns/f${i}`) === true);
    }
    // B hears again: a's entries are all gone (a2 unseen); then a publishes a3.
    b.relay.observe(await fake.get());
    expect(b.seen.missed).to.equal(0);
    fake.watchers.push(b.relay);
    a.relay.publish('ss/ns/a3', ['k']);
    await until('a3 at B', () => b.seen.changed.some((c) => c.store === 'ss/ns/a3'));
    expect(b.seen.missed).to.equal(1);
  });

  it('keeps only well-formed entries of a hand-edited object', () => {
    const entries = parseRelayEntries(
      JSON.stringify([
        { from: 'a.1', seq: 1, at: 5, store: 'ss/ns/x', keys: ['h', 3] },
        { from: 'a.1', seq: 2, at: 5, store: 'ss/ns/x', all: true },
        { from: 'a.1', seq: 'three', at: 5, store: 'ss/ns/x', all: true },
        { from: 'a.1', seq: 4, at: 5, store: 'ss/ns/x' },
        'nonsense',
      ]),
    );
    expect(entries).to.deep.equal([
      { from: 'a.1', seq: 1, at: 5, store: 'ss/ns/x', keys: ['h'] },
      { from: 'a.1', seq: 2, at: 5, store: 'ss/ns/x', all: true },
    ]);
    expect(parseRelayEntries('{not json')).to.deep.equal([]);
  });
});
