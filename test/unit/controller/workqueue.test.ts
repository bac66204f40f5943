import { expect } from 'chai';
import { WorkQueue } from '../../../src/controller/workqueue.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const TIMEOUT = Symbol('timeout');

/**
 * What `pending` resolves to within `ms`, or TIMEOUT. A `get` cannot be taken
 * back, so tests keep the same promise and await it again later rather than
 * calling `get` anew (an abandoned `get` would swallow the next key).
 */
function within<T>(pending: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  return Promise.race([pending, sleep(ms).then((): typeof TIMEOUT => TIMEOUT)]);
}

/** Milliseconds until `pending` resolves to a key (which it must), and the key. */
async function timeUntil(pending: Promise<string | undefined>, limitMs = 2_000): Promise<{ key: string; ms: number }> {
  const started = performance.now();
  const key = await within(pending, limitMs);
  if (typeof key !== 'string') throw new Error(`expected a key within ${limitMs}ms, got ${String(key)}`);
  return { key, ms: performance.now() - started };
}

describe('WorkQueue', () => {
  const queues: WorkQueue[] = [];
  const newQueue = (options?: ConstructorParameters<typeof WorkQueue>[0]) => {
    const q = new WorkQueue(options);
    queues.push(q);
    return q;
  };

  afterEach(() => {
    for (const q of queues.splice(0)) q.shutDown();
  });

  describe('add and get', () => {
    it('hands keys out in the order they were added', async () => {
      const q = newQueue();
      q.add('a');
      q.add('b');
      q.add('c');
      expect(await q.get()).to.equal('a');
      expect(await q.get()).to.equal('b');
      expect(await q.get()).to.equal('c');
    });

    it('keeps a key that is added twice while waiting only once', async () => {
      const q = newQueue();
      q.add('a');
      q.add('b');
      q.add('a');
      expect(q.depth).to.equal(2);
      expect(await q.get()).to.equal('a');
      expect(await q.get()).to.equal('b');
      expect(q.depth).to.equal(0);
      expect(await within(q.get(), 30)).to.equal(TIMEOUT);
    });

    it('hands a key to a worker already blocked in get', async () => {
      const q = newQueue();
      const pending = q.get();
      q.add('a');
      expect(await pending).to.equal('a');
      expect(q.depth).to.equal(0);
      expect(q.inFlight).to.equal(1);
    });

    it('hands one key to one of several blocked workers', async () => {
      const q = newQueue();
      const first = q.get();
      const second = q.get();
      q.add('a');
      expect(await first).to.equal('a');
      expect(await within(second, 30)).to.equal(TIMEOUT);
      q.add('b');
      expect(await second).to.equal('b');
    });

    it('can be added again after done', async () => {
      const q = newQueue();
      q.add('a');
      const key = await q.get();
      expect(key).to.equal('a');
      q.done('a');
      q.add('a');
      expect(await q.get()).to.equal('a');
    });
  });

  describe('a key added while it is processed', () => {
    it('is not handed to a second worker until done, then is handed out once more', async () => {
      const q = newQueue();
      q.add('a');
      expect(await q.get()).to.equal('a');
      q.add('a');
      q.add('a');
      expect(q.depth).to.equal(0);
      const next = q.get();
      expect(await within(next, 30)).to.equal(TIMEOUT);

      q.done('a');
      expect(await next).to.equal('a');
      expect(q.inFlight).to.equal(1);
      q.done('a');
      // Added twice while processing, but handed out again only once.
      expect(q.depth).to.equal(0);
      expect(await within(q.get(), 30)).to.equal(TIMEOUT);
    });

    it('is re-queued behind keys that were already waiting', async () => {
      const q = newQueue();
      q.add('a');
      expect(await q.get()).to.equal('a');
      q.add('a');
      q.add('b');
      q.done('a');
      expect(await q.get()).to.equal('b');
      expect(await q.get()).to.equal('a');
    });

    it('is not handed out again after done when it was not added meanwhile', async () => {
      const q = newQueue();
      q.add('a');
      expect(await q.get()).to.equal('a');
      q.done('a');
      expect(q.inFlight).to.equal(0);
      expect(q.depth).to.equal(0);
      expect(await within(q.get(), 30)).to.equal(TIMEOUT);
    });
  });

  describe('depth and inFlight', () => {
    it('count waiting and processing keys', async () => {
      const q = newQueue();
      expect(q.depth).to.equal(0);
      expect(q.inFlight).to.equal(0);
      q.add('a');
      q.add('b');
      q.add('c');
      expect(q.depth).to.equal(3);
      await q.get();
      await q.get();
      expect(q.depth).to.equal(1);
      expect(q.inFlight).to.equal(2);
      q.done('a');
      expect(q.inFlight).to.equal(1);
      q.done('b');
      expect(q.inFlight).to.equal(0);
      expect(q.depth).to.equal(1);
    });

    it('stay right across many keys (the backing array is compacted)', async () => {
      const q = newQueue();
      for (let i = 0; i < 3000; i++) q.add(`k${i}`);
      expect(q.depth).to.equal(3000);
      for (let i = 0; i < 2500; i++) {
        expect(await q.get()).to.equal(`k${i}`);
        q.done(`k${i}`);
      }
      expect(q.depth).to.equal(500);
      q.add('k2999'); // still waiting: not added twice
      q.add('k0'); // done: queued again
      expect(q.depth).to.equal(501);
      for (let i = 2500; i < 3000; i++) expect(await q.get()).to.equal(`k${i}`);
      expect(await q.get()).to.equal('k0');
    });
  });

  describe('addAfter', () => {
    it('adds the key only after the delay', async () => {
      const q = newQueue();
      q.addAfter('a', 60);
      expect(q.depth).to.equal(0);
      expect(q.scheduled).to.equal(1);
      const started = performance.now();
      const pending = q.get();
      expect(await within(pending, 20)).to.equal(TIMEOUT);
      const { key } = await timeUntil(pending);
      expect(key).to.equal('a');
      expect(performance.now() - started).to.be.at.least(55);
      expect(q.scheduled).to.equal(0);
    });

    it('adds at once for a delay of zero or less', async () => {
      const q = newQueue();
      q.addAfter('a', 0);
      q.addAfter('b', -5);
      expect(q.depth).to.equal(2);
      expect(q.scheduled).to.equal(0);
    });

    it('keeps the earlier schedule when a later one is asked for', async () => {
      const q = newQueue();
      q.addAfter('a', 40);
      q.addAfter('a', 1_000);
      expect(q.scheduled).to.equal(1);
      const { key, ms } = await timeUntil(q.get(), 500);
      expect(key).to.equal('a');
      expect(ms).to.be.lessThan(500);
    });

    it('replaces a later schedule with an earlier one', async () => {
      const q = newQueue();
      q.addAfter('a', 1_000);
      q.addAfter('a', 40);
      expect(q.scheduled).to.equal(1);
      const { key, ms } = await timeUntil(q.get(), 500);
      expect(key).to.equal('a');
      expect(ms).to.be.lessThan(500);
      // The replaced timer is gone: nothing else is scheduled.
      expect(q.scheduled).to.equal(0);
    });

    it('does not duplicate a key that is already waiting when the timer fires', async () => {
      const q = newQueue();
      q.add('a');
      q.addAfter('a', 20);
      await sleep(50);
      expect(q.depth).to.equal(1);
    });
  });

  describe('addRateLimited and forget', () => {
    it('grows the delay exponentially within ±50% jitter', () => {
      const q = newQueue({ baseDelayMs: 100, maxDelayMs: 100_000 });
      for (let round = 0; round < 20; round++) {
        q.forget('a');
        q.cancel('a');
        for (let n = 1; n <= 6; n++) {
          const nominal = 100 * 2 ** (n - 1);
          const delay = q.addRateLimited('a');
          expect(delay, `failure ${n}`).to.be.at.least(nominal * 0.5);
          expect(delay, `failure ${n}`).to.be.below(nominal * 1.5);
        }
      }
    });

    it('jitters the delay, so that keys failing together do not retry together', () => {
      const q = newQueue({ baseDelayMs: 100, maxDelayMs: 100_000 });
      const delays = new Set<number>();
      for (let i = 0; i < 50; i++) delays.add(q.addRateLimited(`k${i}`));
      const list = [...delays];
      expect(list.length).to.be.greaterThan(40);
      expect(list.some((d) => d < 100)).to.equal(true);
      expect(list.some((d) => d > 100)).to.equal(true);
    });

    it('caps the nominal delay at maxDelayMs (jitter applies on top)', () => {
      const q = newQueue({ baseDelayMs: 100, maxDelayMs: 400 });
      const delays: number[] = [];
      for (let n = 1; n <= 10; n++) delays.push(q.addRateLimited('a'));
      for (const delay of delays.slice(3)) {
        expect(delay).to.be.at.least(200);
        expect(delay).to.be.below(600);
      }
    });

    it('uses a separate failure count per key', () => {
      const q = newQueue({ baseDelayMs: 100, maxDelayMs: 100_000 });
      for (let n = 0; n < 5; n++) q.addRateLimited('a');
      const b = q.addRateLimited('b');
      expect(b).to.be.at.least(50);
      expect(b).to.be.below(150);
    });

    it('resets the delay after forget', () => {
      const q = newQueue({ baseDelayMs: 100, maxDelayMs: 100_000 });
      for (let n = 0; n < 5; n++) q.addRateLimited('a');
      q.forget('a');
      const delay = q.addRateLimited('a');
      expect(delay).to.be.at.least(50);
      expect(delay).to.be.below(150);
    });

    it('re-adds the key after the back-off', async () => {
      const q = newQueue({ baseDelayMs: 30 });
      const delay = q.addRateLimited('a');
      expect(q.depth).to.equal(0);
      expect(q.scheduled).to.equal(1);
      const { key, ms } = await timeUntil(q.get());
      expect(key).to.equal('a');
      // Timers may fire a millisecond early in practice; allow a little slack.
      expect(ms).to.be.at.least(delay - 5);
    });
  });

  describe('cancel', () => {
    it('drops a scheduled key so it is never added', async () => {
      const q = newQueue();
      q.addAfter('a', 30);
      q.cancel('a');
      expect(q.scheduled).to.equal(0);
      await sleep(80);
      expect(q.depth).to.equal(0);
    });

    it('drops a scheduled retry and resets the failure count', async () => {
      const q = newQueue({ baseDelayMs: 20, maxDelayMs: 100_000 });
      for (let n = 0; n < 4; n++) q.addRateLimited('a');
      q.cancel('a');
      await sleep(50);
      expect(q.depth).to.equal(0);
      const delay = q.addRateLimited('a');
      expect(delay).to.be.below(30);
    });

    it('leaves other keys scheduled', async () => {
      const q = newQueue();
      q.addAfter('a', 20);
      q.addAfter('b', 20);
      q.cancel('a');
      expect(await timeUntil(q.get(), 500)).to.have.property('key', 'b');
      await sleep(50);
      expect(q.depth).to.equal(0);
      expect(q.scheduled).to.equal(0);
    });
  });

  describe('shutDown', () => {
    it('wakes blocked getters with undefined', async () => {
      const q = newQueue();
      const first = q.get();
      const second = q.get();
      q.shutDown();
      expect(await first).to.equal(undefined);
      expect(await second).to.equal(undefined);
    });

    it('makes get return undefined even with keys waiting', async () => {
      const q = newQueue();
      q.add('a');
      q.shutDown();
      expect(await q.get()).to.equal(undefined);
    });

    it('ignores adds afterwards and drops scheduled keys', async () => {
      const q = newQueue();
      q.addAfter('a', 20);
      q.shutDown();
      expect(q.scheduled).to.equal(0);
      q.add('b');
      q.addAfter('c', 10);
      expect(q.depth).to.equal(0);
      expect(q.scheduled).to.equal(0);
      await sleep(40);
      expect(q.depth).to.equal(0);
    });
  });
});
