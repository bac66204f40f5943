import { expect } from 'chai';
import { parseShardLabel, shardOf } from '../../../src/sharding/ownership.js';

describe('sharding: the shard of a ManagedSecret', () => {
  it('is stable (fixed values: a change of hash would move every object on upgrade)', () => {
    expect(shardOf('team-a', 'db', 16)).to.equal(shardOf('team-a', 'db', 16));
    expect([shardOf('default', 'app-0001', 16), shardOf('team-a', 'db', 256)]).to.deep.equal([14, 253]);
  });

  it('spreads 10,000 names over 16 shards within 15% of even', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 10_000; i++) counts[shardOf(`ns-${i % 50}`, `app-${String(i).padStart(4, '0')}`, 16)]! += 1;
    for (const c of counts) expect(c).to.be.within(625 * 0.85, 625 * 1.15);
  });

  it('separates namespace from name ("a/b" + "c" differs from "a" + "b/c" only through the slash, which names cannot hold)', () => {
    expect(shardOf('a', 'bc', 1 << 20)).not.to.equal(shardOf('ab', 'c', 1 << 20));
  });

  it('refuses a count below one', () => {
    expect(() => shardOf('a', 'b', 0)).to.throw(RangeError);
  });

  it('reads only decimal shard numbers below the count from a label', () => {
    expect(parseShardLabel('3', 16)).to.equal(3);
    expect(parseShardLabel('0', 16)).to.equal(0);
    for (const bad of [undefined, '', '16', '03', '-1', '1.5', ' 1', 'x', '999999'])
      expect(parseShardLabel(bad, 16)).to.equal(undefined);
  });
});
