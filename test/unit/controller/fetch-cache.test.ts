import { expect } from 'chai';
import type { RemoteRef } from '../../../src/api/types.js';
import { FetchCache } from '../../../src/controller/fetch-cache.js';
import { refKey, type ProviderClient } from '../../../src/providers/provider.js';

/** A batching client that answers every ref with "<name>:<key>" and counts its calls. */
function batchingClient(name: string): { client: ProviderClient; calls: RemoteRef[][] } {
  const calls: RemoteRef[][] = [];
  const client = {
    getValue: (ref: RemoteRef) => Promise.resolve(`${name}:${ref.key}`),
    getValues: (refs: RemoteRef[]) => {
      calls.push(refs);
      return Promise.resolve(new Map(refs.map((r) => [refKey(r), `${name}:${r.key}`])));
    },
  } as unknown as ProviderClient;
  return { client, calls };
}

describe('FetchCache batching', () => {
  it('answers every waiter when the store client is replaced while a batch is gathering', async () => {
    const cache = new FetchCache({ batchWindowMs: 20 });
    const first = batchingClient('first');
    const second = batchingClient('second');
    const reads = [
      cache.getValue('ss/ns/s', first.client, { key: 'a' }, 1_000),
      cache.getValue('ss/ns/s', first.client, { key: 'b' }, 1_000),
      cache.getValue('ss/ns/s', second.client, { key: 'c' }, 1_000),
      cache.getValue('ss/ns/s', first.client, { key: 'd' }, 1_000),
    ];
    const values = await Promise.race([
      Promise.all(reads),
      new Promise<string[]>((_, reject) => setTimeout(() => reject(new Error('a read never finished')), 2_000)),
    ]);
    expect(values).to.deep.equal(['first:a', 'first:b', 'second:c', 'first:d']);
    expect(first.calls.flat().length + second.calls.flat().length).to.equal(4);
  });

  it('gathers reads of one client into one batch', async () => {
    const cache = new FetchCache({ batchWindowMs: 5 });
    const one = batchingClient('one');
    await Promise.all(['a', 'b', 'c'].map((key) => cache.getValue('ss/ns/s', one.client, { key }, 1_000)));
    expect(one.calls).to.have.length(1);
    expect(one.calls[0]).to.have.length(3);
  });
});

describe('FetchCache expiry', () => {
  it('drops values older than any TTL a caller may ask for, with their index entries, as reads come', async () => {
    const cache = new FetchCache({ maxAgeMs: 30 });
    const client = {
      getValue: (ref: RemoteRef) => Promise.resolve(`v:${ref.key}`),
    } as unknown as ProviderClient;
    for (let i = 0; i < 50; i++) await cache.getValue('ss/ns/s', client, { key: `k${i}` }, 1_000);
    expect(cache.size).to.equal(50);
    await new Promise((r) => setTimeout(r, 40));
    // One read sweeps what expired (up to 64 a read): the 50 old values go, the new one stays.
    await cache.getValue('ss/ns/s', client, { key: 'fresh' }, 1_000);
    expect(cache.size).to.equal(1);
    // The change index let go of them too: invalidating an expired key finds nothing to drop.
    cache.invalidateKeys('ss/ns/s', ['k0']);
    expect(cache.size).to.equal(1);
  });
});
