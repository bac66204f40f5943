// LeaseFence, the write fence the leader elector and every shard tenure share:
// it ends a holding at the renew deadline by its timer, or by the monotonic
// clock when the timer came late (a paused process runs no timers), and a
// renewal moves the deadline on. The clock is a number the test moves.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotShardOwnerError } from '../../../src/api/errors.js';
import { LeaseExpiry, LeaseFence, microTime, type Lease } from '../../../src/kube/lease.js';

const DEADLINE_MS = 40;

function fence(now: () => number) {
  const expired: string[] = [];
  const f = new LeaseFence({
    renewDeadlineMs: DEADLINE_MS,
    now,
    notHeld: () => new NotShardOwnerError(7),
    endReason: () => new NotShardOwnerError(7),
    onExpired: (why) => expired.push(why),
  });
  return { f, expired };
}

describe('LeaseFence', () => {
  it('passes nothing before the Lease is won', () => {
    const { f } = fence(() => 0);
    expect(f.state).to.equal('idle');
    expect(f.holds()).to.equal(false);
    expect(() => f.assertHeld()).to.throw(NotShardOwnerError);
    expect(f.signal.aborted).to.equal(false);
  });

  it('fires at the renew deadline by its timer, with the holder’s reason, and tells the holder once', async () => {
    const { f, expired } = fence(() => performance.now());
    expect(f.renewed(performance.now())).to.equal(true);
    expect(() => f.assertHeld()).not.to.throw();
    const fired = new Promise<number>((resolve) =>
      f.signal.addEventListener('abort', () => resolve(performance.now()), { once: true }),
    );
    const started = performance.now();
    const at = await fired;
    expect(at - started).to.be.at.least(DEADLINE_MS - 2);
    expect(f.signal.reason).to.be.instanceOf(NotShardOwnerError);
    expect(f.state).to.equal('ended');
    expect(expired).to.have.length(1);
    expect(expired[0]).to.match(/renew deadline \(40 ms\)/);
    expect(() => f.assertHeld()).to.throw(NotShardOwnerError);
  });

  it('fires when the monotonic clock says the deadline passed, even though its timer has not run', () => {
    let now = 1_000;
    const { f, expired } = fence(() => now);
    f.renewed(now);
    // A process paused past its deadline: the clock jumped, no timer ran (this test never yields).
    now += DEADLINE_MS;
    expect(() => f.assertHeld()).to.throw(NotShardOwnerError);
    expect(f.signal.aborted).to.equal(true);
    expect(expired).to.have.length(1);
    // Ended for good: a renewal that answers late does not bring it back.
    expect(f.renewed(now)).to.equal(false);
    expect(f.holds()).to.equal(false);
  });

  it('takes a renewal whose answer came after the deadline as no renewal', () => {
    let now = 1_000;
    const { f } = fence(() => now);
    const sentAt = now;
    now += DEADLINE_MS + 5;
    expect(f.renewed(sentAt)).to.equal(false);
    expect(f.signal.aborted).to.equal(true);
  });

  it('does not fire after a renewal: the deadline moves on from when the renewal was sent', async () => {
    let now = 0;
    const { f, expired } = fence(() => now);
    f.renewed(now);
    now = 30;
    expect(f.renewed(25)).to.equal(true);
    // Longer than the first deadline's timer in real time: that timer, had it stayed armed, would have found
    // the clock at 30 and the renewal at 25, so whatever runs, the fence must still pass.
    await sleep(DEADLINE_MS * 2);
    expect(f.holds()).to.equal(true);
    now = 25 + DEADLINE_MS - 1;
    expect(() => f.assertHeld()).not.to.throw();
    expect(f.signal.aborted).to.equal(false);
    expect(expired).to.deep.equal([]);
    now = 25 + DEADLINE_MS;
    expect(f.holds()).to.equal(false);
    expect(expired).to.have.length(1);
  });

  it('ends at once when the holder ends it, with the reason given, and says what state it was in', () => {
    let now = 0;
    const { f, expired } = fence(() => now);
    f.renewed(now);
    const released = new Error('released');
    expect(f.end('released', released)).to.equal('held');
    expect(f.signal.reason).to.equal(released);
    expect(f.end('again')).to.equal('ended');
    now += DEADLINE_MS * 2;
    expect(f.holds()).to.equal(false);
    // An end the holder asked for is its own to record: onExpired is for the deadline only.
    expect(expired).to.deep.equal([]);
  });

  it('writes MicroTime with six fractional digits', () => {
    expect(microTime(new Date('2026-12-05T14:00:00.123Z'))).to.equal('2026-12-05T14:00:00.123000Z');
  });
});

describe('LeaseExpiry', () => {
  const lease = (holder: string, renewTime: string, leaseDurationSeconds?: number): Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'l', namespace: 'n' },
    spec: {
      holderIdentity: holder,
      renewTime,
      ...(leaseDurationSeconds !== undefined ? { leaseDurationSeconds } : {}),
    },
  });

  it('counts a lease duration on its own clock from the last change it saw, never from the Lease’s timestamps', () => {
    let now = 100_000;
    const expiry = new LeaseExpiry(() => now);
    // Renewed "in 2020" by the holder's clock: only when we first saw it counts.
    expect(expiry.expiresAt(lease('a', '2020-01-01T00:00:00.000000Z', 15), 99)).to.equal(115_000);
    now += 10_000;
    expect(expiry.expiresAt(lease('a', '2020-01-01T00:00:00.000000Z', 15), 99)).to.equal(115_000);
    // A renewal (or a new holder) seen now moves it on from now.
    expect(expiry.expiresAt(lease('a', '2020-01-01T00:00:02.000000Z', 15), 99)).to.equal(125_000);
    now += 1_000;
    expect(expiry.expiresAt(lease('b', '2020-01-01T00:00:02.000000Z', 15), 99)).to.equal(126_000);
    // Without a duration on the Lease, the caller's.
    expect(new LeaseExpiry(() => 0).expiresAt(lease('a', 'x'), 3)).to.equal(3_000);
    expiry.forget('l');
    now += 1_000;
    expect(expiry.expiresAt(lease('b', '2020-01-01T00:00:02.000000Z', 15), 99)).to.equal(127_000);
  });
});
