// A cancelled backend call returns at once with the signal's error, whatever
// the work under it is doing.
import { expect } from 'chai';
import { DeadlineError, NotLeaderError } from '../../../src/api/errors.js';
import { abortError, deadline, raceAbort, throwIfAborted } from '../../../src/api/abort.js';
import { rejectionOf } from '../helpers/index.js';

describe('provider call cancellation', () => {
  it('the signal’s own error when it is ours, else a DeadlineError naming the call', () => {
    const leader = new AbortController();
    leader.abort(new NotLeaderError());
    expect(abortError(leader.signal, 'x')).to.be.instanceOf(NotLeaderError);

    const timeout = new AbortController();
    timeout.abort(new DOMException('The operation timed out.', 'TimeoutError'));
    const err = abortError(timeout.signal, 'Secrets Manager GetSecretValue "db"');
    expect(err).to.be.instanceOf(DeadlineError);
    expect(err.message).to.equal(
      'Secrets Manager GetSecretValue "db": stopped before it finished (its deadline passed)',
    );

    const plain = new AbortController();
    plain.abort();
    expect(abortError(plain.signal, 'x').reason).to.equal('DeadlineExceeded');
    expect(() => throwIfAborted(plain.signal, 'x')).to.throw(DeadlineError);
    expect(() => throwIfAborted(undefined, 'x')).to.not.throw();
  });

  it('raceAbort returns when the signal fires, not when the work ends; the work’s late failure is swallowed', async () => {
    const controller = new AbortController();
    let fail: (err: Error) => void = () => undefined;
    const never = new Promise<string>((_resolve, reject) => (fail = reject));
    const started = Date.now();
    setTimeout(() => controller.abort(new DeadlineError('deadline')), 30);
    const err = await rejectionOf(raceAbort(never, controller.signal, 'work'));
    expect(err).to.be.instanceOf(DeadlineError);
    expect(Date.now() - started).to.be.below(1000);
    fail(new Error('late')); // no unhandled rejection
    await new Promise((r) => setImmediate(r));
  });

  it('raceAbort passes results and errors through, and rejects at once on an aborted signal', async () => {
    const controller = new AbortController();
    expect(await raceAbort(Promise.resolve(1), controller.signal, 'w')).to.equal(1);
    expect((await rejectionOf(raceAbort(Promise.reject(new Error('boom')), controller.signal, 'w'))).message).to.equal(
      'boom',
    );
    expect(await raceAbort(Promise.resolve(2), undefined, 'w')).to.equal(2);
    controller.abort();
    expect(await rejectionOf(raceAbort(Promise.resolve(3), controller.signal, 'w'))).to.be.instanceOf(DeadlineError);
  });
});

describe('deadline (a combined signal that lets go of its parents)', () => {
  it('fires when a parent fires, with the parent’s reason', () => {
    const parent = new AbortController();
    const d = deadline(undefined, parent.signal);
    parent.abort(new NotLeaderError());
    expect(d.signal.aborted).to.equal(true);
    expect(d.signal.reason).to.be.instanceOf(NotLeaderError);
  });

  it('fires at its own time as a TimeoutError', async () => {
    const d = deadline(20);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(d.signal.aborted).to.equal(true);
    expect((d.signal.reason as Error).name).to.equal('TimeoutError');
  });

  it('starts aborted when a parent already is', () => {
    const parent = new AbortController();
    parent.abort(new Error('gone'));
    expect(deadline(1_000, parent.signal).signal.aborted).to.equal(true);
  });

  it('detaches from a long-lived parent when disposed, so a million syncs leave nothing behind', () => {
    const parent = new AbortController();
    let listeners = 0;
    const add = parent.signal.addEventListener.bind(parent.signal);
    const remove = parent.signal.removeEventListener.bind(parent.signal);
    parent.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      listeners += 1;
      add(...args);
    }) as typeof add;
    parent.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      listeners -= 1;
      remove(...args);
    }) as typeof remove;
    for (let i = 0; i < 1_000; i++) deadline(60_000, parent.signal).dispose();
    expect(listeners).to.equal(0);
    // And disposing stops the timer: the signal never fires.
    const d = deadline(1, parent.signal);
    d.dispose();
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        expect(d.signal.aborted).to.equal(false);
        resolve();
      }, 20),
    );
  });
});
