/**
 * The controller's work queue, in the manner of client-go's, made fair between
 * tenants (namespaces) so that one namespace with thousands of failing or slow
 * objects, or a tiny refresh interval, cannot take every worker.
 *
 * Guarantees (each key is a string; `tenantOf(key)` names its tenant):
 * - A key waits at most once, and is processed by one worker at a time: a key
 *   added while it is processed is queued again when `done` is called.
 * - `get` hands keys out round-robin over the tenants that have keys waiting,
 *   first in first out within a tenant. A tenant with 1,000 waiting keys and a
 *   tenant with one are served alternately.
 * - Per-tenant cap, work-conserving: while any other tenant has keys waiting, a
 *   tenant gets no new key once it has `maxInFlightPerTenant` keys in flight.
 *   When no other tenant has keys waiting, a tenant may borrow idle workers
 *   beyond its cap, but never the last idle one: borrowing stops at `workers -
 *   1` keys in flight (one busy namespace alone uses all workers but one: the
 *   cold sync of thousands of ManagedSecrets in a few namespaces is not slowed
 *   down). Workers are not pre-empted, and a borrowed key may be a sync that
 *   waits on a backend that never answers until its deadline (tens of
 *   seconds); the idle worker kept back is what a key of another tenant takes
 *   at once (measured: without it a quiet namespace's changes waited up to 27 s
 *   behind a namespace of failing syncs, docs/performance.md "Noisy
 *   neighbour"). From then on the borrower is held to its cap as its borrowed
 *   keys finish.
 * - `addAfter(key, ms)`: the earliest of several schedules for a key wins.
 * - Back-off: `addRateLimited(key, {minDelayMs})` re-adds a failed key after an
 *   exponential delay with ±50% jitter, or after `minDelayMs` (a Retry-After)
 *   when that is longer; the Retry-After is capped at `maxDelayMs`, so a
 *   hostile backend cannot park a key for a year. It records a `notBefore` for
 *   the key: until then `add`, `addAfter` and a re-add after `done` do not run
 *   the key earlier (they wait for the back-off). No timer shortens a back-off.
 *   `forget(key)` (after a success) and `cancel(key)` clear it; `add(key,
 *   {force: true})` bypasses and clears it, for a change the owner made (a new
 *   generation of the spec) that must not wait out a back-off earned by the old
 *   spec. The failure count survives `force` (only `forget` resets it), so
 *   spec changes that keep failing still back off further.
 * - `cancel(key)` drops the key's timer, failure count and back-off (a key that
 *   is already waiting stays waiting: the reconciler finds the object gone).
 * - `shutDown` stops handing out keys; blocked `get`s resolve to undefined.
 *
 * Every operation is O(1) (amortised): per-key state lives in one map, the
 * keys waiting in a tenant and the tenants with waiting keys are intrusive
 * linked lists, so nothing scans all tenants or all keys. State of idle keys
 * and tenants is dropped, so memory follows the keys that are in use.
 */
import { Node, Yallist } from 'yallist';

/** The longest delay setTimeout keeps (2^31 - 1 ms, 24.8 days); it runs longer ones after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WorkQueueOptions {
  /** First retry delay after a failure. */
  baseDelayMs?: number;
  /** Longest nominal retry delay; the ±50% jitter applies on top. Also caps a Retry-After. */
  maxDelayMs?: number;
  /** The tenant a key belongs to (default: one tenant for all keys, plain FIFO). See `namespaceTenant`. */
  tenantOf?: (key: string) => string;
  /** Workers calling `get`: the default per-tenant cap is half of them. Unknown: no cap. */
  workers?: number;
  /** In-flight keys per tenant while other tenants wait; 0 or unset = half the workers, at least 1. */
  maxInFlightPerTenant?: number;
}

export interface AddOptions {
  /** Run the key now even if it is backing off (a spec change); clears the back-off. */
  force?: boolean;
}

export interface RateLimitOptions {
  /** Wait at least this long (the backend's Retry-After); combined with the back-off by taking the longer. */
  minDelayMs?: number;
}

/** One tenant's share of the queue, for metrics. */
export interface TenantLoad {
  tenant: string;
  /** Keys waiting to be handed out. */
  pending: number;
  /** Keys being processed. */
  inFlight: number;
}

/**
 * The tenant of a controller key: `ms/<ns>/<name>` and `ss/<ns>/<name>` belong
 * to namespace `<ns>`; a cluster-scoped key (`css/<name>`) is its own tenant
 * (it cannot collide with a namespace name, which has no `/`); any other key
 * is its own tenant too.
 */
export function namespaceTenant(key: string): string {
  const first = key.indexOf('/');
  const second = first < 0 ? -1 : key.indexOf('/', first + 1);
  if (second < 0) return key;
  const kind = key.slice(0, first);
  return kind === 'ms' || kind === 'ss' ? key.slice(first + 1, second) : key;
}

/** The per-tenant in-flight cap for a worker count and the `--max-workers-per-namespace` flag (0 = half, at least 1). */
export function perTenantLimit(workers: number, flag = 0): number {
  if (flag > 0) return Math.floor(flag);
  return Math.max(1, Math.floor(workers / 2));
}

interface TenantState {
  readonly name: string;
  /** Keys waiting, in arrival order. */
  readonly pending: Yallist<KeyState>;
  inFlight: number;
  /** Key states that refer to this tenant: it is forgotten with the last one. */
  keyCount: number;
  /** This tenant's place in the `ready` or `capped` ring (in neither when nothing waits). */
  readonly ringNode: Node<TenantState>;
}

interface KeyState {
  readonly key: string;
  readonly tenant: TenantState;
  status: 'idle' | 'pending' | 'processing';
  /** Added while processing: queue again on `done` (`force` when that add was forced). */
  dirty: 'no' | 'yes' | 'force';
  /** The key's place in its tenant's pending list. */
  readonly pendingNode: Node<KeyState>;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  failures: number;
  /** Epoch ms before which the key is not run again (its back-off); 0 = none. */
  notBefore: number;
}

// The lists are yallist's, used only through pushNode and removeNode: removeNode
// clears a node's links, so a node can move between lists (shift/pop would leave
// a stale `next` behind on a node we reuse).
function removeFromList<T>(node: Node<T>): void {
  node.list?.removeNode(node);
}

export class WorkQueue {
  private readonly keys = new Map<string, KeyState>();
  private readonly tenants = new Map<string, TenantState>();
  /** Tenants with keys waiting and in-flight below the cap: served first, round-robin. */
  private readonly ready = new Yallist<TenantState>();
  /** Tenants with keys waiting but at their cap: served only when `ready` is empty. */
  private readonly capped = new Yallist<TenantState>();
  /** Tenants with keys waiting or in flight, so a metrics scrape does not walk idle ones. */
  private readonly active = new Set<TenantState>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private pendingCount = 0;
  private processingCount = 0;
  private timerCount = 0;
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly tenantOf: (key: string) => string;
  /** In-flight keys a tenant may hold while others wait. */
  readonly maxInFlightPerTenant: number;
  /** Keys in flight (all tenants) beyond which a tenant at its cap may not borrow: one worker stays idle for others. */
  private readonly borrowLimit: number;

  constructor(options: WorkQueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 1_000;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    this.tenantOf = options.tenantOf ?? (() => '');
    this.maxInFlightPerTenant =
      options.workers === undefined && !options.maxInFlightPerTenant
        ? Number.POSITIVE_INFINITY
        : perTenantLimit(options.workers ?? 1, options.maxInFlightPerTenant);
    this.borrowLimit = options.workers === undefined ? Number.POSITIVE_INFINITY : options.workers - 1;
  }

  /** Keys waiting to be processed (not counting delayed ones). */
  get depth(): number {
    return this.pendingCount;
  }

  /** Keys scheduled for later. */
  get scheduled(): number {
    return this.timerCount;
  }

  /** Keys being processed. */
  get inFlight(): number {
    return this.processingCount;
  }

  /** Tenants with any key known to the queue (waiting, in flight, scheduled or backing off). */
  get knownTenants(): number {
    return this.tenants.size;
  }

  /** Tenants with keys waiting or in flight. */
  get activeTenants(): number {
    return this.active.size;
  }

  /** One tenant's waiting and in-flight keys, O(1). */
  tenantLoad(tenant: string): TenantLoad {
    const t = this.tenants.get(tenant);
    return { tenant, pending: t?.pending.length ?? 0, inFlight: t?.inFlight ?? 0 };
  }

  /**
   * The `limit` busiest tenants (waiting + in flight, most first; idle ones
   * left out), for a metrics scrape: O(active tenants), not for the hot path.
   */
  topTenants(limit: number): TenantLoad[] {
    const loads: TenantLoad[] = [];
    for (const t of this.active) loads.push({ tenant: t.name, pending: t.pending.length, inFlight: t.inFlight });
    loads.sort((a, b) => b.pending + b.inFlight - (a.pending + a.inFlight) || (a.tenant < b.tenant ? -1 : 1));
    return loads.slice(0, Math.max(0, limit));
  }

  /** Queues the key now, unless it is backing off (then it runs when the back-off ends) or `force` is set. */
  add(key: string, options: AddOptions = {}): void {
    if (this.shuttingDown) return;
    this.enqueue(this.stateOf(key), options.force === true ? 'force' : 'normal');
  }

  /** Adds the key after `delayMs` (not before its back-off ends); an earlier schedule for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    const state = this.stateOf(key);
    const now = Date.now();
    const at = Math.max(now + delayMs, state.notBefore);
    if (at <= now) {
      this.enqueue(state, 'normal');
      return;
    }
    if (state.timer && state.timerAt <= at) return;
    this.setTimer(state, at, now);
  }

  /**
   * Re-adds after a failure: exponential back-off with ±50% jitter, or the
   * Retry-After in `minDelayMs` when longer (capped at `maxDelayMs`). Until
   * then the key does not run (see the file comment). Returns the delay.
   */
  addRateLimited(key: string, options: RateLimitOptions = {}): number {
    const state = this.stateOf(key);
    state.failures += 1;
    const backoff = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (state.failures - 1)) * (0.5 + Math.random());
    const retryAfter = Math.min(this.maxDelayMs, Math.max(0, options.minDelayMs ?? 0));
    const delay = Math.max(backoff, retryAfter);
    if (this.shuttingDown) {
      this.release(state);
      return delay;
    }
    const now = Date.now();
    state.notBefore = now + delay;
    // Waiting now would run it before the back-off ends: it waits for its timer instead.
    if (state.status === 'pending') this.unqueue(state);
    this.setTimer(state, state.notBefore, now);
    return delay;
  }

  /** Clears the failure count and back-off after a success. */
  forget(key: string): void {
    const state = this.keys.get(key);
    if (!state) return;
    state.failures = 0;
    state.notBefore = 0;
    this.release(state);
  }

  /** Drops any scheduled retry or refresh of a key, its failure count and back-off (say, its object was deleted). */
  cancel(key: string): void {
    const state = this.keys.get(key);
    if (!state) return;
    this.clearTimer(state);
    state.failures = 0;
    state.notBefore = 0;
    this.release(state);
  }

  /** The next key, or undefined once shut down. Pair every key with `done`. */
  async get(): Promise<string | undefined> {
    if (this.shuttingDown) return undefined;
    const state = this.next();
    if (state) return state.key;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    const state = this.keys.get(key);
    if (!state || state.status !== 'processing') return;
    state.status = 'idle';
    this.processingCount -= 1;
    state.tenant.inFlight -= 1;
    this.placeTenant(state.tenant);
    const dirty = state.dirty;
    state.dirty = 'no';
    if (dirty !== 'no' && !this.shuttingDown) this.enqueue(state, dirty === 'force' ? 'force' : 'normal');
    else this.release(state);
    // One key fewer in flight may let a blocked worker borrow again.
    this.dispatch();
  }

  /** Stops handing out keys; workers blocked in `get` receive undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const state of this.keys.values()) this.clearTimer(state);
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  private stateOf(key: string): KeyState {
    let state = this.keys.get(key);
    if (state) return state;
    const tenantName = this.tenantOf(key);
    let tenant = this.tenants.get(tenantName);
    if (!tenant) {
      const created: TenantState = {
        name: tenantName,
        pending: new Yallist<KeyState>(),
        inFlight: 0,
        keyCount: 0,
        ringNode: new Node<TenantState>(undefined as unknown as TenantState),
      };
      created.ringNode.value = created;
      this.tenants.set(tenantName, created);
      tenant = created;
    }
    tenant.keyCount += 1;
    state = {
      key,
      tenant,
      status: 'idle',
      dirty: 'no',
      pendingNode: new Node<KeyState>(undefined as unknown as KeyState),
      timer: undefined,
      timerAt: 0,
      failures: 0,
      notBefore: 0,
    };
    state.pendingNode.value = state;
    this.keys.set(key, state);
    return state;
  }

  /** Forgets a key (and its tenant) that holds nothing worth keeping. */
  private release(state: KeyState): void {
    if (state.status !== 'idle' || state.timer || state.failures > 0 || state.notBefore > 0 || state.dirty !== 'no')
      return;
    this.keys.delete(state.key);
    // A tenant is forgotten with the last key that refers to it (then nothing of it waits or runs).
    state.tenant.keyCount -= 1;
    if (state.tenant.keyCount === 0) this.tenants.delete(state.tenant.name);
  }

  private enqueue(state: KeyState, mode: 'normal' | 'force' | 'timer'): void {
    if (this.shuttingDown) return;
    if (mode === 'force') state.notBefore = 0;
    else if (mode === 'normal' && state.notBefore > 0) {
      const now = Date.now();
      if (state.notBefore > now) {
        // Backing off: it runs when the back-off ends, not before.
        if (!state.timer || state.timerAt > state.notBefore) this.setTimer(state, state.notBefore, now);
        return;
      }
    }
    if (state.status === 'processing') {
      if (mode === 'force') state.dirty = 'force';
      else if (state.dirty === 'no') state.dirty = 'yes';
      return;
    }
    if (state.status === 'pending') return;
    state.status = 'pending';
    this.pendingCount += 1;
    state.tenant.pending.pushNode(state.pendingNode);
    this.placeTenant(state.tenant);
    this.dispatch();
  }

  /** Takes a waiting key out of its tenant's list (it was not handed out). */
  private unqueue(state: KeyState): void {
    removeFromList(state.pendingNode);
    state.status = 'idle';
    this.pendingCount -= 1;
    this.placeTenant(state.tenant);
  }

  /** Hands waiting keys to blocked workers. */
  private dispatch(): void {
    while (this.waiters.length > 0) {
      const state = this.next();
      if (!state) return;
      const waiter = this.waiters.shift();
      waiter?.(state.key);
    }
  }

  /**
   * The next key round-robin: a tenant below its cap first, else (work-conserving)
   * a capped one, while that leaves a worker idle for the tenants below their cap.
   */
  private next(): KeyState | undefined {
    const tenant =
      this.ready.head?.value ?? (this.processingCount < this.borrowLimit ? this.capped.head?.value : undefined);
    if (!tenant) return undefined;
    const node = tenant.pending.head;
    if (!node) throw new Error('work queue: a tenant in the ring has no waiting key');
    const state = node.value;
    tenant.pending.removeNode(node);
    this.pendingCount -= 1;
    state.status = 'processing';
    this.processingCount += 1;
    tenant.inFlight += 1;
    // To the back of its ring: the next get serves the next tenant.
    removeFromList(tenant.ringNode);
    this.placeTenant(tenant);
    return state;
  }

  /** Puts a tenant in the ring its counts call for (a tenant already there keeps its place); called after every count change. */
  private placeTenant(tenant: TenantState): void {
    if (tenant.pending.length + tenant.inFlight > 0) this.active.add(tenant);
    else this.active.delete(tenant);
    const ring =
      tenant.pending.length === 0 ? undefined : tenant.inFlight < this.maxInFlightPerTenant ? this.ready : this.capped;
    if (tenant.ringNode.list === ring) return;
    removeFromList(tenant.ringNode);
    ring?.pushNode(tenant.ringNode);
  }

  private setTimer(state: KeyState, at: number, now: number): void {
    this.clearTimer(state);
    // Node runs a timer longer than MAX_TIMER_MS after 1 ms: a longer wait (a 720h rotation) goes in steps.
    const step = at - now > MAX_TIMER_MS;
    const timer = setTimeout(
      () => {
        state.timer = undefined;
        this.timerCount -= 1;
        // A timer is set at or after the key's back-off, so it may run the key even
        // if the clock says a millisecond early; a back-off that began after it was
        // set replaced it, but be sure.
        if (state.notBefore > at) this.setTimer(state, state.notBefore, Date.now());
        else if (step) this.setTimer(state, at, Date.now());
        else this.enqueue(state, 'timer');
        this.release(state);
      },
      step ? MAX_TIMER_MS : at - now,
    );
    timer.unref();
    state.timer = timer;
    state.timerAt = at;
    this.timerCount += 1;
  }

  private clearTimer(state: KeyState): void {
    if (!state.timer) return;
    clearTimeout(state.timer);
    state.timer = undefined;
    this.timerCount -= 1;
  }
}
