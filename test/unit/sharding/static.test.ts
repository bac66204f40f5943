import { expect } from 'chai';
import { NotShardOwnerError } from '../../../src/api/errors.js';
import { parseShardList, StaticShardOwnership } from '../../../src/sharding/static.js';

describe('sharding: StaticShardOwnership', () => {
  it('passes the fences of the shards it holds only', () => {
    const ownership = new StaticShardOwnership(4, [1, 3]);
    expect([...ownership.owned()]).to.deep.equal([1, 3]);
    expect(() => ownership.fenceFor(1).assertHeld()).not.to.throw();
    expect(() => ownership.fenceFor(0).assertHeld()).to.throw(NotShardOwnerError);
    expect(() => ownership.fenceFor(4)).to.throw(RangeError);
    expect(() => new StaticShardOwnership(4, [4])).to.throw(RangeError);
  });

  it('fences a lost shard (signal aborted) before its listeners hear of the new set', () => {
    const ownership = new StaticShardOwnership(4, [0, 1]);
    const lostSignal = ownership.fenceFor(1).signal;
    const heard: { owned: number[]; fenced: boolean }[] = [];
    ownership.onChange((owned) => {
      let fenced = false;
      try {
        ownership.fenceFor(1).assertHeld();
      } catch (err) {
        fenced = err instanceof NotShardOwnerError;
      }
      heard.push({ owned: [...owned], fenced });
    });
    ownership.set([0, 2]);
    expect(heard).to.deep.equal([{ owned: [0, 2], fenced: true }]);
    expect(lostSignal.aborted).to.equal(true);
    expect(lostSignal.reason).to.be.instanceOf(NotShardOwnerError);
    ownership.set([2, 0]); // the same set: no news
    expect(heard).to.have.length(1);
  });

  it('gives a regained shard a fresh signal, the old one staying aborted', () => {
    const ownership = new StaticShardOwnership(2, [0]);
    const first = ownership.fenceFor(0).signal;
    ownership.set([]);
    ownership.set([0]);
    expect(first.aborted).to.equal(true);
    expect(ownership.fenceFor(0).signal.aborted).to.equal(false);
    expect(() => ownership.fenceFor(0).assertHeld()).not.to.throw();
  });

  it('stops telling a listener once it is removed', () => {
    const ownership = new StaticShardOwnership(2, []);
    let calls = 0;
    const off = ownership.onChange(() => (calls += 1));
    ownership.set([1]);
    off();
    ownership.set([0]);
    expect(calls).to.equal(1);
  });
});

describe('sharding: --shards-owned', () => {
  it('reads numbers and ranges, sorted and without repeats', () => {
    expect(parseShardList('3,0-2, 2 ,7', 8)).to.deep.equal([0, 1, 2, 3, 7]);
    expect(parseShardList('', 8)).to.deep.equal([]);
  });

  it('refuses shards beyond the count, backwards ranges and words', () => {
    expect(() => parseShardList('8', 8)).to.throw(/not below the shard count 8/);
    expect(() => parseShardList('5-2', 8)).to.throw(/ends before it begins/);
    expect(() => parseShardList('one', 8)).to.throw(/not a shard number/);
  });
});
