// FetchCache.invalidateKeys: a change event drops exactly the cached reads of
// the changed entries (values, properties, matching find results), including a
// read still in flight, whose stale answer must not be kept.
import { expect } from 'chai';
import { FetchCache } from '../../../src/controller/fetch-cache.js';
import type { Properties, ProviderClient } from '../../../src/providers/provider.js';

/** A store client of our own interface that counts reads and answers from a map. */
function countingClient(values: Map<string, string>) {
  const reads: string[] = [];
  let gate: Promise<void> | undefined;
  const client: ProviderClient = {
    async getValue(ref) {
      reads.push(ref.key);
      // The value as the backend had it when the read began.
      const value = values.get(ref.key) ?? '';
      if (gate) await gate;
      return value;
    },
    async getProperties(key) {
      reads.push(`props:${key}`);
      return { value: values.get(key) ?? '' };
    },
    async find(query) {
      reads.push(`find:${query.prefix ?? ''}`);
      const out = new Map<string, Properties>();
      for (const [k, v] of values) if (k.startsWith(query.prefix ?? '')) out.set(k, { value: v });
      return out;
    },
    async check() {},
    async close() {},
  };
  return { client, reads, hold: (p: Promise<void>) => (gate = p), release: () => (gate = undefined) };
}

describe('FetchCache.invalidateKeys', () => {
  const TTL = 60_000;

  it('drops the changed key only, in its store only', async () => {
    const values = new Map([
      ['a', '1'],
      ['b', '2'],
    ]);
    const { client, reads } = countingClient(values);
    const cache = new FetchCache();
    await cache.getValue('ss/x/s', client, { key: 'a' }, TTL);
    await cache.getValue('ss/x/s', client, { key: 'b' }, TTL);
    await cache.getProperties('ss/x/s', client, 'a', undefined, TTL);
    await cache.getValue('ss/x/other', client, { key: 'a' }, TTL);
    values.set('a', '10');
    cache.invalidateKeys('ss/x/s', ['a']);
    reads.length = 0;
    expect(await cache.getValue('ss/x/s', client, { key: 'a' }, TTL)).to.equal('10');
    expect(await cache.getValue('ss/x/s', client, { key: 'b' }, TTL)).to.equal('2');
    expect(await cache.getProperties('ss/x/s', client, 'a', undefined, TTL)).to.deep.equal({ value: '10' });
    expect(await cache.getValue('ss/x/other', client, { key: 'a' }, TTL)).to.equal('1');
    expect(reads).to.deep.equal(['a', 'props:a']);
  });

  it('drops the find results a changed key could appear in, and keeps the others', async () => {
    const values = new Map([['team/one', '1']]);
    const { client, reads } = countingClient(values);
    const cache = new FetchCache();
    await cache.find('ss/x/s', client, { prefix: 'team/' }, TTL);
    await cache.find('ss/x/s', client, { prefix: 'other/' }, TTL);
    values.set('team/two', '2');
    cache.invalidateKeys('ss/x/s', ['team/two']);
    reads.length = 0;
    expect([...(await cache.find('ss/x/s', client, { prefix: 'team/' }, TTL)).keys()]).to.deep.equal([
      'team/one',
      'team/two',
    ]);
    await cache.find('ss/x/s', client, { prefix: 'other/' }, TTL);
    expect(reads).to.deep.equal(['find:team/']);
  });

  it('does not keep the answer of a read that was in flight when the key changed', async () => {
    const values = new Map([['a', 'old']]);
    const { client, reads, hold, release } = countingClient(values);
    const cache = new FetchCache();
    let open!: () => void;
    hold(new Promise<void>((r) => (open = r)));
    const first = cache.getValue('ss/x/s', client, { key: 'a' }, TTL);
    await new Promise((r) => setImmediate(r));
    cache.invalidateKeys('ss/x/s', ['a']);
    values.set('a', 'new');
    release();
    // A sync that starts after the change does not join the stale read.
    const second = cache.getValue('ss/x/s', client, { key: 'a' }, TTL);
    open();
    expect(await first).to.equal('old');
    expect(await second).to.equal('new');
    expect(reads).to.deep.equal(['a', 'a']);
    // The late stale answer did not overwrite the fresh one.
    reads.length = 0;
    expect(await cache.getValue('ss/x/s', client, { key: 'a' }, TTL)).to.equal('new');
    expect(reads).to.deep.equal([]);
  });
});
