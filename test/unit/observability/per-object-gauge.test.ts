import { expect } from 'chai';
import { PerObjectGauge } from '../../../src/observability/per-object-gauge.js';
import { turnsDuring } from '../helpers/index.js';

describe('PerObjectGauge (one series per ManagedSecret)', () => {
  it('writes the Prometheus text format: HELP, TYPE, one line per object, updated and removed in place', async () => {
    const g = new PerObjectGauge('x_seconds', 'When.');
    g.set({ namespace: 'a', name: 'one' }, 1.5);
    g.set({ namespace: 'a', name: 'two' }, 2);
    g.set({ namespace: 'a', name: 'one' }, 3);
    g.remove({ namespace: 'a', name: 'two' });
    g.remove({ namespace: 'a', name: 'never' });
    expect(await g.text()).to.equal(
      '# HELP x_seconds When.\n# TYPE x_seconds gauge\nx_seconds{namespace="a",name="one"} 3\n',
    );
    expect((await g.get()).values).to.deep.equal([{ labels: { namespace: 'a', name: 'one' }, value: 3 }]);
  });

  it('escapes what the text format needs escaped in a label value', async () => {
    const g = new PerObjectGauge('x', 'h');
    g.set({ namespace: 'n', name: 'a"b\\c\nd' }, 1);
    expect(await g.text()).to.include('x{namespace="n",name="a\\"b\\\\c\\nd"} 1\n');
  });

  it('lets the event loop turn between slices of 50,000 series', async () => {
    const g = new PerObjectGauge('x', 'h');
    for (let i = 0; i < 50_000; i++) g.set({ namespace: 'team', name: `ms-${i}` }, i);
    const { value: text, turns } = await turnsDuring(() => g.text(1_000));
    expect(text.split('\n').filter((l) => l.startsWith('x{'))).to.have.length(50_000);
    expect(turns).to.be.at.least(40);
  });
});
