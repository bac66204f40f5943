// A per-store request budget: a token bucket shared by every ManagedSecret that
// uses the store, so one busy store cannot exhaust the account's API quota and
// the SDK's adaptive retry rarely has to back off. A ClusterSecretStore's budget
// is shared by every namespace that uses it, so waiters are served round-robin
// by tenant (namespace): one namespace's thousand queued requests delay another
// namespace's single request by at most one round.
import { Node, Yallist } from 'yallist';
import type { AnyStore } from '../api/types.js';
import { ProviderConfigError, storeLabel } from './provider.js';

export const DEFAULT_REQUESTS_PER_SECOND = 10;

/** What a budget has done, for metrics: `used` only grows, `waiting` is the current queue. */
export interface BudgetStats {
  /** `SecretStore ns/name` or `ClusterSecretStore name` (empty for an unnamed budget). */
  store: string;
  /** Sustained requests per second. */
  rate: number;
  /** Requests allowed at once after a quiet period (twice the rate, at least 1). */
  burst: number;
  /** Callers waiting for a token now. */
  waiting: number;
  /** Tokens handed out since the budget was made. */
  used: number;
}

export interface RequestBudgetOptions {
  /** Default twice the rate (at least 1). */
  burst?: number;
  /** Names the budget in its stats. */
  store?: string;
  /** Called whenever `waiting` or `used` changes. Must not throw. */
  onChange?: (stats: BudgetStats) => void;
  /** The clock, for tests. */
  now?: () => number;
}

interface Waiter {
  resolve: () => void;
}

/** One tenant's waiters (arrival order) and its place in the ring of tenants that wait. */
interface TenantWaiters {
  readonly name: string;
  readonly waiters: Yallist<Waiter>;
  readonly ringNode: Node<TenantWaiters>;
}

/**
 * A token bucket with a fair queue: `await budget.take(signal, tenant)` before
 * each backend request. Callers wait instead of failing; tenants with waiters
 * are served one request each in turn (round-robin), each tenant's own
 * requests in arrival order; an aborted caller leaves the queue at once. All
 * operations are O(1). The tenant defaults to '' (one tenant: plain FIFO).
 */
export class RequestBudget {
  private tokens: number;
  private last: number;
  /** Tenants with waiters, in serving order (yallist used only through pushNode/removeNode, which clear links). */
  private readonly ring = new Yallist<TenantWaiters>();
  private readonly tenants = new Map<string, TenantWaiters>();
  private waitingCount = 0;
  private timer: NodeJS.Timeout | undefined;
  private usedCount = 0;
  private ratePerSecond: number;
  private burstSize: number;
  private readonly explicitBurst: number | undefined;
  private readonly now: () => number;
  /** Replaceable, so a registry can forward changes of budgets it hands out. */
  onChange: ((stats: BudgetStats) => void) | undefined;
  readonly store: string;

  constructor(requestsPerSecond: number = DEFAULT_REQUESTS_PER_SECOND, options: RequestBudgetOptions = {}) {
    validateRate(requestsPerSecond);
    this.now = options.now ?? Date.now;
    this.ratePerSecond = requestsPerSecond;
    this.explicitBurst = options.burst;
    this.burstSize = burstFor(requestsPerSecond, options.burst);
    this.tokens = this.burstSize;
    this.last = this.now();
    this.store = options.store ?? '';
    this.onChange = options.onChange;
  }

  get waiting(): number {
    return this.waitingCount;
  }

  /** Tenants with a request waiting now. */
  get waitingTenants(): number {
    return this.tenants.size;
  }

  get used(): number {
    return this.usedCount;
  }

  get rate(): number {
    return this.ratePerSecond;
  }

  get burst(): number {
    return this.burstSize;
  }

  stats(): BudgetStats {
    return { store: this.store, rate: this.rate, burst: this.burst, waiting: this.waiting, used: this.used };
  }

  /** A store's spec changed its rate: later requests follow the new one. Tokens already saved stay (up to the new burst). */
  setRate(requestsPerSecond: number): void {
    validateRate(requestsPerSecond);
    if (requestsPerSecond === this.ratePerSecond) return;
    this.refill();
    this.ratePerSecond = requestsPerSecond;
    this.burstSize = burstFor(requestsPerSecond, this.explicitBurst);
    this.tokens = Math.min(this.tokens, this.burstSize);
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.drain();
  }

  /**
   * Resolves when the request may go out; rejects with the signal's reason if
   * aborted while waiting. `tenant` (the namespace of the ManagedSecret the
   * request is for) decides whose turn it is when requests wait.
   */
  take(signal?: AbortSignal, tenant = ''): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    this.refill();
    if (this.waitingCount === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.usedCount += 1;
      this.changed();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const node = new Node<Waiter>({ resolve });
      const queue = this.tenantWaiters(tenant);
      queue.waiters.pushNode(node);
      this.waitingCount += 1;
      if (!queue.ringNode.list) this.ring.pushNode(queue.ringNode);
      if (signal) {
        const onAbort = () => {
          if (node.list !== queue.waiters) return;
          this.unlink(queue, node);
          if (this.waitingCount === 0 && this.timer) {
            clearTimeout(this.timer);
            this.timer = undefined;
          }
          this.changed();
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        // Served: the listener must not outlive the wait (one signal may cover many requests).
        node.value.resolve = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
      }
      this.changed();
      this.schedule();
    });
  }

  private tenantWaiters(tenant: string): TenantWaiters {
    let queue = this.tenants.get(tenant);
    if (!queue) {
      const created: TenantWaiters = {
        name: tenant,
        waiters: new Yallist<Waiter>(),
        ringNode: new Node<TenantWaiters>(undefined as unknown as TenantWaiters),
      };
      created.ringNode.value = created;
      this.tenants.set(tenant, created);
      queue = created;
    }
    return queue;
  }

  /** Takes a waiter out; a tenant with no waiters left leaves the ring. */
  private unlink(queue: TenantWaiters, node: Node<Waiter>): void {
    queue.waiters.removeNode(node);
    this.waitingCount -= 1;
    if (queue.waiters.length === 0) {
      queue.ringNode.list?.removeNode(queue.ringNode);
      this.tenants.delete(queue.name);
    }
  }

  private refill(): void {
    const now = this.now();
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.burstSize, this.tokens + elapsed * this.ratePerSecond);
  }

  private schedule(): void {
    if (this.timer || this.waitingCount === 0) return;
    const waitMs = Math.max(1, Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, waitMs);
  }

  private drain(): void {
    this.refill();
    let served = false;
    while (this.waitingCount > 0 && this.tokens >= 1) {
      const queue = this.ring.head?.value;
      const node = queue?.waiters.head;
      if (!queue || !node) break;
      this.unlink(queue, node);
      // Its turn is used: to the back of the ring if it has more waiting.
      if (queue.waiters.length > 0) this.ring.pushNode(queue.ringNode);
      this.tokens -= 1;
      this.usedCount += 1;
      served = true;
      node.value.resolve();
    }
    if (served) this.changed();
    this.schedule();
  }

  private changed(): void {
    this.onChange?.(this.stats());
  }
}

/**
 * The budgets of all stores, one per store, so every client built for a store
 * (the controller rebuilds them when a spec changes or credentials age) draws
 * from the same bucket. The metrics collector reads `all()`.
 */
export class BudgetRegistry {
  private readonly budgets = new Map<string, RequestBudget>();
  /** Called whenever any budget's `waiting` or `used` changes. */
  onChange: ((stats: BudgetStats) => void) | undefined;

  /** The store's budget, made on first use; a changed rate is applied to the existing one. */
  for(store: AnyStore, requestsPerSecond: number | undefined): RequestBudget {
    const rate = requestsPerSecond ?? DEFAULT_REQUESTS_PER_SECOND;
    try {
      validateRate(rate);
    } catch (err) {
      throw new ProviderConfigError(`requestsPerSecond: ${err instanceof Error ? err.message : String(err)}`);
    }
    const name = storeLabel(store);
    const existing = this.budgets.get(name);
    if (existing) {
      existing.setRate(rate);
      return existing;
    }
    const budget = new RequestBudget(rate, { store: name, onChange: (stats) => this.onChange?.(stats) });
    this.budgets.set(name, budget);
    return budget;
  }

  all(): RequestBudget[] {
    return [...this.budgets.values()];
  }

  /** The store was deleted. */
  forget(store: AnyStore): void {
    this.budgets.delete(storeLabel(store));
  }
}

/** Budgets of every store in this process (the AWS and Vault providers use it). */
export const storeBudgets = new BudgetRegistry();

export { storeLabel };

function validateRate(rate: number): void {
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0) {
    throw new RangeError(`requests per second must be a positive number, got ${String(rate)}`);
  }
}

function burstFor(rate: number, explicit: number | undefined): number {
  return Math.max(1, explicit ?? rate * 2);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}
