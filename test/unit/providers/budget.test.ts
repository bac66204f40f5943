import { expect } from 'chai';
import { getEventListeners, setMaxListeners } from 'node:events';
import type { ClusterSecretStore, SecretStore } from '../../../src/api/types.js';
import { BudgetRegistry, RequestBudget, storeLabel, type BudgetStats } from '../../../src/providers/budget.js';
import { ProviderConfigError } from '../../../src/providers/provider.js';
import { rejectionOf } from '../helpers/index.js';

const ns: SecretStore = {
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'SecretStore',
  metadata: { name: 'sm', namespace: 'team-a' },
  spec: { provider: {} },
};
const cluster: ClusterSecretStore = {
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'ClusterSecretStore',
  metadata: { name: 'sm' },
  spec: { provider: {} },
};

/** A settled-state probe: whether a promise resolved within the current turn of timers. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('aws request budget', () => {
  it('lets a burst of twice the rate through at once, then paces the rest', async () => {
    let now = 0;
    const budget = new RequestBudget(5, { now: () => now });
    expect(budget.burst).to.equal(10);
    for (let i = 0; i < 10; i++) await budget.take();
    expect(budget.used).to.equal(10);
    const eleventh = budget.take();
    expect(await settled(eleventh)).to.equal(false);
    expect(budget.waiting).to.equal(1);
    now += 200; // one token at 5/s
    await eleventh;
    expect(budget.waiting).to.equal(0);
    expect(budget.used).to.equal(11);
  });

  it('serves waiters in arrival order and reports every change', async () => {
    const changes: BudgetStats[] = [];
    const budget = new RequestBudget(200, { burst: 1, store: 'SecretStore a/b', onChange: (s) => changes.push(s) });
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((i) => budget.take().then(() => order.push(i))));
    expect(order).to.deep.equal([0, 1, 2, 3]);
    expect(budget.used).to.equal(4);
    expect(Math.max(...changes.map((c) => c.waiting))).to.equal(3);
    expect(changes.at(-1)).to.deep.include({ store: 'SecretStore a/b', waiting: 0, used: 4, rate: 200, burst: 1 });
  });

  it('takes about 1/rate per request once the burst is spent', async () => {
    const budget = new RequestBudget(50, { burst: 1 });
    const started = Date.now();
    for (let i = 0; i < 6; i++) await budget.take();
    // 5 waits of 20 ms each.
    expect(Date.now() - started).to.be.within(80, 400);
  });

  it('drops an aborted waiter from the queue', async () => {
    const budget = new RequestBudget(0.5, { burst: 1 });
    await budget.take();
    const abort = new AbortController();
    const waiting = budget.take(abort.signal);
    expect(budget.waiting).to.equal(1);
    abort.abort(new Error('shutting down'));
    expect((await rejectionOf(waiting)).message).to.equal('shutting down');
    expect(budget.waiting).to.equal(0);
    expect(budget.used).to.equal(1);
  });

  it('applies a new rate to waiters already queued', async () => {
    const budget = new RequestBudget(0.1, { burst: 1 });
    await budget.take();
    const waiting = budget.take();
    budget.setRate(1000);
    await waiting;
    expect(budget.rate).to.equal(1000);
  });

  it('rejects rates that are not positive numbers', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new RequestBudget(bad)).to.throw(RangeError);
    }
  });

  it('keeps one budget per store, shared by every client, and follows rate changes', () => {
    const registry = new BudgetRegistry();
    const a = registry.for(ns, undefined);
    expect(a.rate).to.equal(10);
    expect(a.burst).to.equal(20);
    expect(registry.for(ns, 4)).to.equal(a);
    expect(a.rate).to.equal(4);
    const b = registry.for(cluster, 2);
    expect(b).to.not.equal(a);
    expect(registry.all().map((x) => x.store)).to.deep.equal(['SecretStore team-a/sm', 'ClusterSecretStore sm']);
    registry.forget(ns);
    expect(registry.for(ns, 4)).to.not.equal(a);
    expect(() => registry.for(ns, 0)).to.throw(ProviderConfigError, /requestsPerSecond/);
  });

  it('forwards every budget change to the registry hook', async () => {
    const registry = new BudgetRegistry();
    const seen: string[] = [];
    registry.onChange = (s) => seen.push(`${s.store}:${s.used}`);
    await registry.for(cluster, 10).take();
    expect(seen).to.deep.equal(['ClusterSecretStore sm:1']);
  });

  it('names stores the way messages do', () => {
    expect(storeLabel(ns)).to.equal('SecretStore team-a/sm');
    expect(storeLabel(cluster)).to.equal('ClusterSecretStore sm');
  });

  describe('fairness between namespaces', () => {
    // Queues build at a near-zero rate; a failed assertion must not leave waiters on a 1,000 s timer.
    const budgets: RequestBudget[] = [];
    const slowBudget = () => {
      const budget = new RequestBudget(0.001, { burst: 1 });
      budgets.push(budget);
      return budget;
    };
    afterEach(() => {
      for (const budget of budgets.splice(0)) budget.setRate(1_000_000);
    });

    it("serves waiting namespaces in turn: a thousand queued requests of one delay another's single request by one round at most", async () => {
      // Nearly no refill while the queue builds up, then fast enough to drain it.
      const budget = slowBudget();
      await budget.take();
      const abort = new AbortController();
      setMaxListeners(1_100, abort.signal);
      const order: string[] = [];
      const noisy = Array.from({ length: 1_000 }, () =>
        budget.take(abort.signal, 'noisy').then(
          () => order.push('noisy'),
          () => undefined,
        ),
      );
      const quiet = budget.take(abort.signal, 'quiet').then(() => order.push('quiet'));
      const other = budget.take(abort.signal, 'other').then(() => order.push('other'));
      expect(budget.waiting).to.equal(1_002);
      const tenantsWaiting = budget.waitingTenants;
      budget.setRate(2_000);
      await Promise.all([quiet, other]);
      expect(order.slice(0, 3)).to.deep.equal(['noisy', 'quiet', 'other']);
      expect(tenantsWaiting).to.equal(3);
      abort.abort(new Error('done'));
      await Promise.all(noisy);
      expect(budget.waiting).to.equal(0);
      expect(budget.waitingTenants).to.equal(0);
    });

    it("serves each namespace's own requests in arrival order, alternating between namespaces", async () => {
      const budget = slowBudget();
      await budget.take();
      const order: string[] = [];
      const takes = ['a0', 'a1', 'a2', 'b0', 'b1'].map((id) =>
        budget.take(undefined, id.slice(0, 1)).then(() => order.push(id)),
      );
      budget.setRate(500);
      await Promise.all(takes);
      expect(order).to.deep.equal(['a0', 'b0', 'a1', 'b1', 'a2']);
    });

    it("drops an aborted waiter from its namespace's queue, and the namespace from the ring with its last waiter", async () => {
      const budget = slowBudget();
      await budget.take();
      const order: string[] = [];
      const a0 = new AbortController();
      const b0 = new AbortController();
      const first = budget.take(a0.signal, 'a');
      const second = budget.take(undefined, 'a').then(() => order.push('a1'));
      const lone = budget.take(b0.signal, 'b');
      const third = budget.take(undefined, 'c').then(() => order.push('c0'));
      expect(budget.waitingTenants).to.equal(3);
      a0.abort(new Error('a0 gave up'));
      b0.abort(new Error('b0 gave up'));
      expect((await rejectionOf(first)).message).to.equal('a0 gave up');
      expect((await rejectionOf(lone)).message).to.equal('b0 gave up');
      expect(budget.waiting).to.equal(2);
      expect(budget.waitingTenants).to.equal(2);
      budget.setRate(500);
      await Promise.all([second, third]);
      expect(order).to.deep.equal(['a1', 'c0']);
      expect(budget.used).to.equal(3);
    });

    it('removes its abort listener once a waiter is served (one signal may cover many requests)', async () => {
      const budget = new RequestBudget(1_000, { burst: 1 });
      const abort = new AbortController();
      await Promise.all(Array.from({ length: 5 }, () => budget.take(abort.signal, 'a')));
      expect(getEventListeners(abort.signal, 'abort')).to.have.length(0);
    });
  });
});
