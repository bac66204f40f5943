import { expect } from 'chai';
import { namespaceTenant, perTenantLimit, WorkQueue } from '../../../src/controller/workqueue.js';

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
/**
 * The key `pending` resolves to and the milliseconds from `started` (default: now). Tests of a
 * back-off pass the time from before the back-off began: a loaded machine may pause between lines.
 */
async function timeUntil(
  pending: Promise<string | undefined>,
  limitMs = 2_000,
  started = performance.now(),
): Promise<{ key: string; ms: number }> {
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
      const t0 = performance.now();
      const delay = q.addRateLimited('a');
      expect(q.depth).to.equal(0);
      expect(q.scheduled).to.equal(1);
      const { key, ms } = await timeUntil(q.get(), 2_000, t0);
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

  describe('fairness between tenants', () => {
    /** Takes `n` keys without finishing any (n workers busy). */
    async function take(q: WorkQueue, n: number): Promise<string[]> {
      const keys: string[] = [];
      for (let i = 0; i < n; i++) {
        const key = await within(q.get(), 200);
        if (typeof key !== 'string') throw new Error(`get ${i + 1} of ${n} returned ${String(key)}`);
        keys.push(key);
      }
      return keys;
    }
    const tenantOfTaken = (keys: string[]) => keys.map(namespaceTenant);

    it('hands the lone key of a quiet namespace out within maxInFlight+1 gets while a noisy one has 1,000 waiting', async () => {
      const q = newQueue({ tenantOf: namespaceTenant, workers: 16 });
      for (let i = 0; i < 1000; i++) q.add(`ms/noisy/s${i}`);
      q.add('ms/quiet/only');
      const taken = await take(q, 8 + 1);
      expect(taken).to.include('ms/quiet/only');
      expect(q.maxInFlightPerTenant).to.equal(8);
    });

    it('serves a key that arrives behind a long backlog next, while workers keep finishing noisy keys', async () => {
      const q = newQueue({ tenantOf: namespaceTenant, workers: 4 });
      for (let i = 0; i < 1000; i++) q.add(`ms/noisy/s${i}`);
      for (let i = 0; i < 300; i++) q.done((await take(q, 1))[0] as string);
      q.add('ms/quiet/only');
      const [first, second] = await take(q, 2);
      expect([first, second]).to.include('ms/quiet/only');
    });

    it('serves tenants round-robin, first in first out within each', async () => {
      const q = newQueue({ tenantOf: namespaceTenant });
      for (const key of ['ms/a/1', 'ms/a/2', 'ms/a/3', 'ms/b/1', 'ss/b/store', 'css/global', 'ms/a/4']) q.add(key);
      expect(await take(q, 7)).to.deep.equal([
        'ms/a/1',
        'ms/b/1',
        'css/global',
        'ms/a/2',
        'ss/b/store',
        'ms/a/3',
        'ms/a/4',
      ]);
    });

    it('holds a namespace to its in-flight cap while another namespace has keys waiting', async () => {
      const workers = 6;
      const q = newQueue({ tenantOf: namespaceTenant, workers });
      const cap = 3; // half the workers
      for (let i = 0; i < 200; i++) q.add(`ms/noisy/s${i}`);
      for (let i = 0; i < 40; i++) q.add(`ms/quiet/s${i}`);
      const inFlight = await take(q, workers);
      let quietLeft = 40 - inFlight.filter((k) => k.startsWith('ms/quiet/')).length;
      let maxNoisy = 0;
      // Workers finish keys in a scrambled order and take the next, until the quiet namespace's keys are all out.
      for (let step = 0; quietLeft > 0; step++) {
        const finished = inFlight.splice((step * 7) % inFlight.length, 1)[0] as string;
        q.done(finished);
        const [next] = await take(q, 1);
        inFlight.push(next as string);
        if (next?.startsWith('ms/quiet/')) quietLeft -= 1;
        const noisyInFlight = inFlight.filter((k) => k.startsWith('ms/noisy/')).length;
        maxNoisy = Math.max(maxNoisy, noisyInFlight);
        expect(noisyInFlight, `step ${step}`).to.be.at.most(cap);
      }
      expect(maxNoisy).to.equal(cap);
      expect(q.tenantLoad('noisy').inFlight).to.equal(inFlight.filter((k) => k.startsWith('ms/noisy/')).length);
    });

    it('lets a namespace alone use every worker but one (work-conserving), then holds it to its cap once another has work', async () => {
      const q = newQueue({ tenantOf: namespaceTenant, workers: 8 });
      for (let i = 0; i < 100; i++) q.add(`ms/busy/s${i}`);
      const inFlight = await take(q, 7);
      expect(tenantOfTaken(inFlight)).to.deep.equal(Array(7).fill('busy'));
      // The eighth worker stays idle for other namespaces: borrowing stops at workers - 1.
      const eighth = q.get();
      expect(await within(eighth, 50)).to.equal(TIMEOUT);
      for (let i = 0; i < 10; i++) q.add(`ms/other/s${i}`);
      expect(await within(eighth, 200)).to.equal('ms/other/s0');
      inFlight.push('ms/other/s0');
      // Not pre-empted: the other namespace gets each worker the busy one frees until it is down to its cap of 4.
      for (let round = 0; round < 3; round++) {
        q.done(inFlight.shift() as string);
        const [next] = await take(q, 1);
        expect(namespaceTenant(next as string), `round ${round}`).to.equal('other');
      }
      expect(q.tenantLoad('busy')).to.deep.include({ inFlight: 4 });
      expect(q.tenantLoad('other')).to.deep.include({ inFlight: 4, pending: 6 });
    });

    it('hands the key of another namespace to the worker kept idle while a namespace has borrowed all the others', async () => {
      // 16 workers, a namespace whose syncs never finish (a backend that does not answer): it borrows
      // 15 workers; a change in a quiet namespace must not wait for one of those to finish.
      const q = newQueue({ tenantOf: namespaceTenant, workers: 16 });
      for (let i = 0; i < 1000; i++) q.add(`ms/noisy/s${i}`);
      const workers = Array.from({ length: 16 }, () => q.get());
      const handed = await Promise.all(workers.map((w) => within(w, 100)));
      expect(handed.filter((k) => typeof k === 'string' && k.startsWith('ms/noisy/'))).to.have.length(15);
      const idle = workers[handed.indexOf(TIMEOUT)] as Promise<string | undefined>;
      q.add('ms/quiet/change');
      const { key, ms } = await timeUntil(idle, 200);
      expect(key).to.equal('ms/quiet/change');
      expect(ms).to.be.below(100);
      // Finished, it does not go back to the noisy namespace: the worker stays idle.
      q.done('ms/quiet/change');
      expect(await within(q.get(), 50)).to.equal(TIMEOUT);
    });

    it('hands a key to a blocked worker when its namespace is at its cap, nothing else waits and workers are idle', async () => {
      const q = newQueue({ tenantOf: namespaceTenant, workers: 4 });
      q.add('ms/a/1');
      q.add('ms/a/2');
      expect(await take(q, 2)).to.deep.equal(['ms/a/1', 'ms/a/2']);
      const blocked = q.get();
      q.add('ms/a/3');
      expect(await within(blocked, 200)).to.equal('ms/a/3');
      expect(q.maxInFlightPerTenant).to.equal(2);
    });

    it('lets a blocked worker borrow again when a key finishes', async () => {
      const q = newQueue({ tenantOf: namespaceTenant, workers: 4 });
      for (let i = 0; i < 10; i++) q.add(`ms/a/${i}`);
      const taken = await take(q, 3);
      const blocked = q.get();
      expect(await within(blocked, 50)).to.equal(TIMEOUT);
      q.done(taken[0] as string);
      // The finished worker has not asked again yet: the blocked one takes the next key.
      expect(await within(blocked, 200)).to.equal('ms/a/3');
    });

    it('reports per-namespace load cheaply and forgets namespaces that have nothing left', async () => {
      const q = newQueue({ tenantOf: namespaceTenant, workers: 4 });
      for (let i = 0; i < 5; i++) q.add(`ms/big/s${i}`);
      q.add('ms/small/s0');
      q.add('css/global');
      const taken = await take(q, 2);
      expect(taken).to.deep.equal(['ms/big/s0', 'ms/small/s0']);
      expect(q.tenantLoad('big')).to.deep.equal({ tenant: 'big', pending: 4, inFlight: 1 });
      expect(q.tenantLoad('nobody')).to.deep.equal({ tenant: 'nobody', pending: 0, inFlight: 0 });
      expect(q.topTenants(2)).to.deep.equal([
        { tenant: 'big', pending: 4, inFlight: 1 },
        { tenant: 'css/global', pending: 1, inFlight: 0 },
      ]);
      expect(q.depth).to.equal(5);
      expect(q.inFlight).to.equal(2);
      expect(q.activeTenants).to.equal(3);
      for (const key of taken) q.done(key);
      // Three workers at a time: a namespace borrowing beyond its cap leaves the fourth idle.
      for (const key of await take(q, 3)) q.done(key);
      for (const key of await take(q, 2)) q.done(key);
      expect(q.depth).to.equal(0);
      expect(q.topTenants(10)).to.deep.equal([]);
      expect(q.activeTenants).to.equal(0);
      expect(q.knownTenants).to.equal(0);
    });

    it('keeps a namespace known while one of its keys is scheduled or backing off', () => {
      const q = newQueue({ tenantOf: namespaceTenant });
      q.addAfter('ms/a/1', 10_000);
      q.addRateLimited('ms/b/1');
      expect(q.knownTenants).to.equal(2);
      expect(q.activeTenants).to.equal(0);
      q.cancel('ms/a/1');
      q.cancel('ms/b/1');
      expect(q.knownTenants).to.equal(0);
    });

    // Timing bounds are generous (the machine may be loaded); what they catch is a scan per
    // operation: over all tenants (50,000 tenants of one key) or over one tenant's keys (one
    // tenant of 50,000), which would take minutes at this size, not milliseconds.
    const shapes = [
      { tenants: 500, cap: undefined },
      { tenants: 50_000, cap: undefined },
      { tenants: 1, cap: undefined },
      { tenants: 500, cap: 1 },
    ];
    for (const { tenants, cap } of shapes) {
      it(`adds, hands out and finishes 50,000 keys across ${tenants} namespace${tenants === 1 ? '' : 's'}${cap ? ` (cap ${cap})` : ''} in O(1) per key`, async () => {
        const q = newQueue({ tenantOf: namespaceTenant, workers: 16, maxInFlightPerTenant: cap });
        const started = performance.now();
        for (let i = 0; i < 50_000; i++) q.add(`ms/ns${i % tenants}/s${i}`);
        expect(q.depth).to.equal(50_000);
        const inFlight: string[] = [];
        const readded = new Set<string>();
        let handed = 0;
        while (q.depth > 0 || inFlight.length > 0) {
          // 16 workers, of which a namespace borrowing beyond its cap leaves one idle.
          while (inFlight.length < 15 && q.depth > 0) {
            inFlight.push((await q.get()) as string);
            handed += 1;
          }
          const key = inFlight.shift() as string;
          q.done(key);
          // Every tenth key comes back once (its refresh or an event).
          if (handed % 10 === 0 && !readded.has(key)) {
            readded.add(key);
            q.add(key);
          }
        }
        const elapsed = performance.now() - started;
        expect(handed).to.equal(50_000 + readded.size);
        expect(readded.size).to.be.above(4_000);
        expect(q.inFlight).to.equal(0);
        expect(q.knownTenants).to.equal(0);
        expect(elapsed).to.be.below(5_000);
      });
    }

    it('derives the cap from the worker count and --max-workers-per-namespace', () => {
      expect(perTenantLimit(16)).to.equal(8);
      expect(perTenantLimit(16, 0)).to.equal(8);
      expect(perTenantLimit(3)).to.equal(1);
      expect(perTenantLimit(1)).to.equal(1);
      expect(perTenantLimit(16, 5)).to.equal(5);
      expect(newQueue().maxInFlightPerTenant).to.equal(Number.POSITIVE_INFINITY);
      expect(newQueue({ workers: 10, maxInFlightPerTenant: 2 }).maxInFlightPerTenant).to.equal(2);
    });

    it('names the tenant of a controller key', () => {
      expect(namespaceTenant('ms/team-a/db')).to.equal('team-a');
      expect(namespaceTenant('ss/team-a/aws')).to.equal('team-a');
      expect(namespaceTenant('css/shared')).to.equal('css/shared');
      expect(namespaceTenant('odd')).to.equal('odd');
      expect(namespaceTenant('xx/a/b')).to.equal('xx/a/b');
    });
  });

  describe('back-off is never shortened', () => {
    it('a shorter addAfter or an add does not run a backing-off key before its back-off ends', async () => {
      const q = newQueue({ baseDelayMs: 200 });
      const t0 = performance.now();
      const delay = q.addRateLimited('a');
      q.addAfter('a', 10);
      q.add('a');
      expect(q.depth).to.equal(0);
      const { key, ms } = await timeUntil(q.get(), 2_000, t0);
      expect(key).to.equal('a');
      expect(ms).to.be.at.least(delay - 5);
    });

    it('a later addAfter beyond the back-off still runs the key when the back-off ends if it is also added', async () => {
      const q = newQueue({ baseDelayMs: 60 });
      const t0 = performance.now();
      const delay = q.addRateLimited('a');
      q.addAfter('a', 5_000);
      q.add('a');
      const { ms } = await timeUntil(q.get(), 2_000, t0);
      expect(ms).to.be.at.least(delay - 5);
      expect(ms).to.be.below(1_000);
    });

    it('a key added while it was processed and then failed waits for its back-off after done', async () => {
      const q = newQueue({ baseDelayMs: 150 });
      q.add('a');
      expect(await q.get()).to.equal('a');
      q.add('a'); // an event during the sync
      const t0 = performance.now();
      const delay = q.addRateLimited('a');
      q.done('a');
      expect(q.depth).to.equal(0);
      const { ms } = await timeUntil(q.get(), 2_000, t0);
      expect(ms).to.be.at.least(delay - 5);
    });

    it('a key that was waiting when it failed elsewhere leaves the queue until its back-off ends', async () => {
      const q = newQueue({ baseDelayMs: 80 });
      q.add('a');
      const t0 = performance.now();
      const delay = q.addRateLimited('a');
      expect(q.depth).to.equal(0);
      expect(q.scheduled).to.equal(1);
      const { key, ms } = await timeUntil(q.get(), 2_000, t0);
      expect(key).to.equal('a');
      expect(ms).to.be.at.least(delay - 5);
    });

    it('honours a Retry-After longer than the back-off, capped at maxDelayMs', async () => {
      const q = newQueue({ baseDelayMs: 10, maxDelayMs: 100_000 });
      const t0 = performance.now();
      const delay = q.addRateLimited('a', { minDelayMs: 150 });
      expect(delay).to.equal(150);
      q.addAfter('a', 1);
      const { ms } = await timeUntil(q.get(), 2_000, t0);
      expect(ms).to.be.at.least(145);
      const capped = newQueue({ baseDelayMs: 10, maxDelayMs: 400 });
      expect(capped.addRateLimited('b', { minDelayMs: 365 * 24 * 3_600_000 })).to.equal(400);
      // A shorter Retry-After does not shorten the exponential back-off either.
      const longer = newQueue({ baseDelayMs: 1_000 });
      expect(longer.addRateLimited('c', { minDelayMs: 5 })).to.be.at.least(500);
    });

    it('add with force runs a backing-off key at once (a spec change), also when it is being processed', async () => {
      const q = newQueue({ baseDelayMs: 60_000 });
      q.addRateLimited('a');
      q.add('a', { force: true });
      expect(q.depth).to.equal(1);
      expect(await q.get()).to.equal('a');
      q.addRateLimited('a');
      q.add('a', { force: true });
      q.done('a');
      expect(q.depth).to.equal(1);
    });

    it('forget and cancel end the back-off; force does not reset the failure count', async () => {
      const q = newQueue({ baseDelayMs: 100, maxDelayMs: 100_000 });
      q.addRateLimited('a');
      q.forget('a');
      q.add('a');
      expect(q.depth).to.equal(1);
      q.addRateLimited('b');
      q.cancel('b');
      q.add('b');
      expect(q.depth).to.equal(2);
      for (let n = 0; n < 3; n++) q.addRateLimited('c');
      q.add('c', { force: true });
      expect(q.addRateLimited('c')).to.be.at.least(400);
    });
  });
});
