import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { CpuTurns } from '../../../src/controller/cpu-turns.js';
import { rejectionOf } from '../helpers/index.js';

/** Busy-waits: a synchronous step that takes `ms` of the event loop. */
function work(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spinning
  }
}

describe('CpuTurns (CPU-heavy steps share the event loop)', () => {
  it('runs steps that became ready together over several turns, so a timer due meanwhile runs between them', async () => {
    const turns = new CpuTurns(20);
    const order: string[] = [];
    // A timer due now, as a Lease renewal or a watchdog would be.
    setTimeout(() => order.push('timer'), 0);
    await Promise.all(Array.from({ length: 6 }, (_, i) => turns.run(() => (work(15), order.push(`step${i}`)))));
    // All six at once would be 90 ms before the timer; with a 20 ms budget at most two steps go first.
    expect(order.indexOf('timer'), order.join(' ')).to.be.within(0, 2);
    expect(order.filter((o) => o.startsWith('step'))).to.deep.equal(['step0', 'step1', 'step2', 'step3', 'step4', 'step5']);
  });

  it('runs a step alone in its turn at once and passes its result or error on', async () => {
    const turns = new CpuTurns(20);
    const started = performance.now();
    expect(await turns.run(() => 42)).to.equal(42);
    expect(performance.now() - started).to.be.lessThan(5);
    const err = await rejectionOf(turns.run(() => {
      throw new Error('step failed');
    }));
    expect((err as Error).message).to.equal('step failed');
    expect(await turns.run(() => 'after a failure')).to.equal('after a failure');
  });

  it('never blocks the event loop much longer than the budget plus one step (a timer ticking every millisecond)', async () => {
    const turns = new CpuTurns(20);
    let last = performance.now();
    let longest = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    await Promise.all(Array.from({ length: 20 }, () => turns.run(() => work(10))));
    clearInterval(ticker);
    // 200 ms of work in all; no stretch without a tick much over 30 ms (slack for a busy machine).
    expect(longest).to.be.lessThan(80);
  });
});
