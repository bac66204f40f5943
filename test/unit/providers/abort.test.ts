// A cancelled backend call returns at once with the signal's error, whatever
// the work under it is doing.
import { expect } from 'chai';
import { DeadlineError, NotLeaderError } from '../../../src/api/errors.js';
import { abortError, raceAbort, throwIfAborted } from '../../../src/providers/abort.js';
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
