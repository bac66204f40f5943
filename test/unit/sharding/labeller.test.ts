import { expect } from 'chai';
import { shardLabelFix, unlabelledSelector } from '../../../src/sharding/labeller.js';
import { LABEL_SHARD, shardOf } from '../../../src/sharding/ownership.js';

const ms = (name: string, label?: string) => ({
  metadata: { name, namespace: 'team-a', ...(label === undefined ? {} : { labels: { [LABEL_SHARD]: label } }) },
});

describe('sharding: the shard labeller', () => {
  const computed = String(shardOf('team-a', 'db', 16));
  const other = String((Number(computed) + 1) % 16);

  it('leaves a ManagedSecret with its computed shard label alone', () => {
    expect(shardLabelFix(ms('db', computed), 16)).to.equal(undefined);
  });

  it('labels one without the label, or with a malformed, out-of-range or hand-edited one, with the computed shard', () => {
    for (const label of [undefined, '', 'x', '16', '007', other])
      expect(shardLabelFix(ms('db', label), 16), String(label)).to.equal(computed);
  });

  it('computes the label from the namespace and name (the same on every replica)', () => {
    expect(shardLabelFix({ metadata: { name: 'db', namespace: 'team-b' } }, 16)).to.equal(
      String(shardOf('team-b', 'db', 16)),
    );
  });

  it('selects, server-side, the objects without a valid shard label', () => {
    expect(unlabelledSelector(3)).to.equal(`${LABEL_SHARD} notin (0,1,2)`);
  });
});
