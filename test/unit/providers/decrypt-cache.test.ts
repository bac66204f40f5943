import { expect } from 'chai';
import { DecryptCache } from '../../../src/providers/decrypt-cache.js';
import { rejectionOf } from '../helpers/index.js';

describe('aws-kms/DecryptCache', () => {
  let now = 0;
  let loads: string[];
  const clock = () => now;

  function loader(value: string, delayMs = 0) {
    return async () => {
      loads.push(value);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return Buffer.from(value);
    };
  }

  beforeEach(() => {
    now = 1_000_000;
    loads = [];
  });

  it('loads once and then serves copies from memory', async () => {
    const cache = new DecryptCache({ now: clock });
    const first = await cache.get('k', loader('v'));
    first.fill(0); // the caller zeroes its copy; the cache keeps its own
    const second = await cache.get('k', loader('v'));
    expect(second.toString()).to.equal('v');
    expect(loads).to.deep.equal(['v']);
    expect(cache.stats()).to.deep.equal({ size: 1, hits: 1, misses: 1, coalesced: 0, evictions: 0 });
  });

  it('forgets results after the TTL (default 5 minutes)', async () => {
    const cache = new DecryptCache({ now: clock });
    await cache.get('k', loader('v'));
    now += 5 * 60_000 - 1;
    await cache.get('k', loader('v'));
    expect(loads).to.have.length(1);
    now += 1;
    await cache.get('k', loader('v'));
    expect(loads).to.have.length(2);
    expect(cache.stats().evictions).to.equal(1);
  });

  it('keeps at most maxEntries, dropping the least recently used', async () => {
    const cache = new DecryptCache({ now: clock, maxEntries: 2 });
    await cache.get('a', loader('a'));
    await cache.get('b', loader('b'));
    await cache.get('a', loader('a')); // a is now the most recent
    await cache.get('c', loader('c')); // evicts b
    expect(cache.stats().size).to.equal(2);
    await cache.get('a', loader('a'));
    expect(loads).to.deep.equal(['a', 'b', 'c']);
    await cache.get('b', loader('b'));
    expect(loads).to.deep.equal(['a', 'b', 'c', 'b']);
    expect(cache.stats().evictions).to.equal(2);
  });

  it('defaults to 1000 entries', async () => {
    const cache = new DecryptCache({ now: clock });
    for (let i = 0; i < 1001; i++) await cache.get(`k${i}`, loader(`v${i}`));
    expect(cache.stats().size).to.equal(1000);
    await cache.get('k0', loader('v0'));
    expect(loads).to.have.length(1002);
  });

  it('coalesces concurrent identical loads into one', async () => {
    const cache = new DecryptCache({ now: clock });
    const results = await Promise.all(Array.from({ length: 20 }, () => cache.get('k', loader('v', 20))));
    expect(results.map(String)).to.deep.equal(Array(20).fill('v'));
    expect(loads).to.have.length(1);
    expect(cache.stats()).to.include({ misses: 1, coalesced: 19 });
    // Each caller got its own buffer.
    results[0]?.fill(0);
    expect(results[1]?.toString()).to.equal('v');
  });

  it('does not cache failures, and every waiter sees one', async () => {
    const cache = new DecryptCache({ now: clock });
    let calls = 0;
    const failing = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('KMS said no');
    };
    const errors = await Promise.all([rejectionOf(cache.get('k', failing)), rejectionOf(cache.get('k', failing))]);
    expect(errors.map((e) => e.message)).to.deep.equal(['KMS said no', 'KMS said no']);
    expect(calls).to.equal(1);
    expect((await cache.get('k', loader('v'))).toString()).to.equal('v');
    expect(cache.stats().size).to.equal(1);
  });

  it('clear() empties the cache and does not keep loads that were in flight', async () => {
    const cache = new DecryptCache({ now: clock });
    await cache.get('a', loader('a'));
    const pending = cache.get('b', loader('b', 10));
    cache.clear();
    expect((await pending).toString()).to.equal('b');
    expect(cache.stats().size).to.equal(0);
    await cache.get('a', loader('a'));
    expect(loads).to.deep.equal(['a', 'b', 'a']);
  });

  it('with ttlMs 0 only coalesces', async () => {
    const cache = new DecryptCache({ now: clock, ttlMs: 0 });
    await Promise.all([cache.get('k', loader('v', 5)), cache.get('k', loader('v', 5))]);
    await cache.get('k', loader('v'));
    expect(loads).to.have.length(2);
    expect(cache.stats().size).to.equal(0);
  });

  it('refuses nonsense limits', () => {
    expect(() => new DecryptCache({ ttlMs: -1 })).to.throw();
    expect(() => new DecryptCache({ maxEntries: 1.5 })).to.throw();
  });
});
