// The shard coordinator (issue 18): which virtual shards this replica holds,
// claimed through coordination.k8s.io Leases, with a write fence per shard,
// the leader's own (LeaseFence, src/kube/lease.ts). Kubernetes is the
// distributed engine: a member Lease per replica says who is alive, a Lease per
// shard says who owns it, and resourceVersion compare-and-swap settles races.
//
// Every retry period each replica makes, at rest: one PUT per held shard Lease
// (renewals, in parallel), one PUT of its member Lease and one LIST of the
// group's Leases (by label). At S = 16 shards and 4 replicas with the default
// 2 s retry period that is (16 + 4 + 4) / 2 s = 12 Lease requests per second for
// the whole cluster (at S = 256: 132/s); rebalancing adds a few writes per moved
// shard, once.
import { BulkheadPolicy, bulkhead } from 'cockatiel';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { NotShardOwnerError, SecretsyncError } from '../api/errors.js';
import { resolveLeaderElectionTiming, type LeaderElectionTiming } from '../controller/leader.js';
import {
  isAlreadyExists,
  isConflict,
  isNotFound,
  type KubeClient,
  type KubeList,
  type WriteFence,
} from '../kube/client.js';
import type { KubeAuth } from '../kube/config.js';
import {
  LeaseExpiry,
  LeaseFence,
  LoopSleep,
  leaseClient,
  leaseRequest,
  leasesPath,
  microTime,
  type Lease,
} from '../kube/lease.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import {
  DEFAULT_SHARD_LEASE_PREFIX,
  LABEL_SHARD_LEASE_GROUP,
  LABEL_SHARD_LEASE_ROLE,
  shardLeaseName,
  shardOfLeaseName,
} from './lease-holders.js';
import { DEFAULT_SHARD_COUNT, MAX_SHARD_COUNT, type ShardOwnership } from './ownership.js';
/** Renewals, acquisitions and releases in flight at once (the coordinator's own client has this many sockets). */
const LEASE_CONCURRENCY = 8;

export interface ShardCoordinatorOptions extends LeaderElectionTiming {
  /** Where the Leases live (the operator's namespace). */
  namespace: string;
  /** This replica's name (the Pod name): holderIdentity of its Leases; unique among replicas. */
  identity: string;
  /** Virtual shards (default DEFAULT_SHARD_COUNT); every replica of a deployment must use the same. */
  shardCount?: number;
  /** Lease names: `<prefix>-<n>` for shards, `<prefix>-member-<hash of identity>` for replicas. */
  leasePrefix?: string;
  /** User-Agent of the coordinator's own client (audit logs tell Lease traffic from the workers' writes). */
  userAgent?: string;
  /** A monotonic clock in milliseconds; tests move it forward to simulate a paused process. */
  monotonicNow?: () => number;
}

/** The shard coordinator's options cannot work (a bad count or prefix; timing errors are LeaderElectionTimingError). */
export class ShardCoordinatorOptionsError extends SecretsyncError {
  constructor(message: string) {
    super('InvalidShardCoordinatorOptions', 'terminal', message);
    this.name = 'ShardCoordinatorOptionsError';
  }
}

/**
 * The fair share of `identity` among `members`: sorted by identity, the first
 * (shardCount mod R) members get ceil(S/R), the others floor(S/R). Every
 * replica computes the same shares from the same member list.
 */
export function fairShare(shardCount: number, members: readonly string[], identity: string): number {
  const sorted = [...new Set(members)].sort();
  const index = sorted.indexOf(identity);
  if (index < 0) return 0;
  const base = Math.floor(shardCount / sorted.length);
  return index < shardCount % sorted.length ? base + 1 : base;
}

/**
 * Rendezvous (highest random weight) hashing: how much `identity` wants
 * `shard`. A replica keeps the shards it weighs highest and releases the
 * others, and reaches for free shards in the same order, so a replica tends to
 * get the same shards back and two replicas short of their share seldom race
 * for the same free shard.
 */
export function shardWeight(shard: number, identity: string): number {
  return createHash('sha256').update(`${identity}\u0000${shard}`).digest().readUInt32BE(0);
}

/** What one replica sees when it plans: who is alive, what it holds, what nobody holds. */
export interface ShardView {
  shardCount: number;
  identity: string;
  /** Live members, this replica included. */
  members: readonly string[];
  /** Shards this replica holds now (fence passing). */
  held: ReadonlySet<number>;
  /** Shards nobody holds: no Lease, an empty holder, or a holder that has not renewed within its lease duration. */
  free: ReadonlySet<number>;
}

/** What a replica does in one pass: release its extras (lowest weight first) or reach for free shards. */
export interface ShardPlan {
  share: number;
  release: number[];
  acquire: number[];
}

/**
 * Plans one pass. Only a replica over its share gives shards up, and only as
 * many as it is over, so adding or removing a replica moves only the shards
 * that must move (the measured counts are in test/unit/sharding/).
 */
export function planShards(view: ShardView): ShardPlan {
  const share = fairShare(view.shardCount, view.members, view.identity);
  const byWeight = (shards: Iterable<number>) =>
    [...shards]
      .map((shard) => ({ shard, weight: shardWeight(shard, view.identity) }))
      .sort((a, b) => b.weight - a.weight || a.shard - b.shard)
      .map((s) => s.shard);
  if (view.held.size > share) return { share, release: byWeight(view.held).slice(share), acquire: [] };
  const wanted = share - view.held.size;
  const free = byWeight([...view.free].filter((s) => !view.held.has(s)));
  return { share, release: [], acquire: free.slice(0, wanted) };
}

/** One tenure of one shard: from winning its Lease to losing or releasing it. Its fence never passes again once lost. */
interface Tenure {
  shard: number;
  readonly fence: LeaseFence;
  /** The Lease as last written or read: its resourceVersion makes the next renewal a compare-and-swap. */
  lease: Lease;
}

/**
 * Holds a fair share of the virtual shards through Leases, renews them, fences
 * each one, and rebalances when replicas come and go.
 *
 * A shard is held, as far as this replica's writes go, only until
 * renewDeadline after the moment it *sent* its last successful renewal: the
 * server applied that renewal no earlier, and no other replica takes the Lease
 * over before leaseDuration after it saw that renewal, which is later. The
 * deadline is enforced by each shard's LeaseFence: a timer and, for a process
 * that ran no timers while it was stopped, the monotonic clock on every `assertHeld()`.
 *
 * Liveness of others is judged as client-go's leader election does: a Lease
 * counts as expired when its holder or renew time has not changed for its
 * lease duration, measured on this replica's own clock from when it saw the
 * last change (other hosts' timestamps are never compared with ours).
 *
 * RBAC it needs in `namespace`: leases get, list, create, update, delete (the
 * Lease names are not known in advance: member Leases are named by identity).
 */
export class ShardCoordinator implements ShardOwnership {
  readonly shardCount: number;
  private readonly client: KubeClient;
  private readonly leaseDuration: number;
  private readonly renewDeadline: number;
  private readonly retryPeriod: number;
  private readonly leaseSeconds: number;
  private readonly now: () => number;
  private readonly prefix: string;
  private readonly leasesPath: string;
  private readonly memberName: string;
  private readonly limiter: BulkheadPolicy;
  private readonly held = new Map<number, Tenure>();
  private readonly expiry: LeaseExpiry;
  private readonly pause = new LoopSleep();
  private readonly listeners = new Set<(owned: ReadonlySet<number>) => void>();
  private memberLease: Lease | undefined;
  private liveMembers: readonly string[] = [];
  private running: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stopped = false;

  constructor(
    auth: KubeAuth,
    private readonly options: ShardCoordinatorOptions,
    private readonly logger: Logger,
  ) {
    this.shardCount = options.shardCount ?? DEFAULT_SHARD_COUNT;
    if (!Number.isInteger(this.shardCount) || this.shardCount < 1 || this.shardCount > MAX_SHARD_COUNT)
      throw new ShardCoordinatorOptionsError(
        `sharding: the shard count must be an integer from 1 to ${MAX_SHARD_COUNT}, got ${this.shardCount}`,
      );
    this.prefix = options.leasePrefix ?? DEFAULT_SHARD_LEASE_PREFIX;
    // A DNS label short enough that `<prefix>-member-<16 hex>` is one too, and usable as a label value.
    if (!/^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/.test(this.prefix))
      throw new ShardCoordinatorOptionsError(
        `sharding: the Lease prefix must be a DNS label of at most 40 characters, got ${JSON.stringify(this.prefix)}`,
      );
    if (options.identity === '') throw new ShardCoordinatorOptionsError('sharding: the identity must not be empty');
    const timing = resolveLeaderElectionTiming(options);
    this.leaseDuration = timing.leaseDurationMs;
    this.renewDeadline = timing.renewDeadlineMs;
    this.retryPeriod = timing.retryPeriodMs;
    this.leaseSeconds = Math.ceil(this.leaseDuration / 1000);
    this.now = options.monotonicNow ?? (() => performance.now());
    this.expiry = new LeaseExpiry(this.now);
    this.client = leaseClient(auth, {
      maxSockets: LEASE_CONCURRENCY,
      userAgent: options.userAgent ?? 'secretsync-shard-coordinator',
    });
    this.limiter = bulkhead(LEASE_CONCURRENCY, Number.MAX_SAFE_INTEGER);
    this.leasesPath = leasesPath(options.namespace);
    this.memberName = `${this.prefix}-member-${createHash('sha256').update(options.identity).digest('hex').slice(0, 16)}`;
  }

  /** This replica's identity. */
  get identity(): string {
    return this.options.identity;
  }

  /** The shards held now: won, not lost, renewed within the renew deadline. */
  owned(): ReadonlySet<number> {
    const owned = new Set<number>();
    for (const tenure of [...this.held.values()]) if (tenure.fence.holds()) owned.add(tenure.shard);
    return owned;
  }

  /** The live members as this replica last saw them (itself included), sorted. */
  members(): readonly string[] {
    return this.liveMembers;
  }

  onChange(listener: (owned: ReadonlySet<number>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The fence of the shard's current tenure. A fence taken while the shard is
   * held fails for good once it is lost, even if the shard is won back later
   * (ask again after onChange); one taken while it is not held always fails.
   */
  fenceFor(shard: number): WriteFence {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.shardCount)
      throw new RangeError(`shard ${shard} is not in 0..${this.shardCount - 1}`);
    const tenure = this.held.get(shard);
    if (tenure?.fence.holds()) return tenure.fence;
    const error = new NotShardOwnerError(shard);
    return {
      assertHeld: () => {
        throw error;
      },
      signal: AbortSignal.abort(error),
    };
  }

  /** Starts claiming and renewing; resolves after the first pass (its claims made or failed). */
  start(): Promise<void> {
    if (this.running) throw new Error('the shard coordinator was already started');
    let firstPass: () => void = () => undefined;
    const first = new Promise<void>((resolve) => (firstPass = resolve));
    this.running = this.loop(firstPass);
    return Promise.race([first, this.running]);
  }

  /**
   * Stops. By default a graceful handover: every held shard stops passing its
   * fence, then its Lease is cleared, and the member Lease is deleted, so the
   * others take the shards over at their next pass. `{ release: false }`
   * leaves the Leases as they are (the others wait for them to expire): a
   * replica that dies, as tests simulate it; fences still fail at their deadlines.
   */
  stop(options: { release?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.pause.wake();
      await this.running;
      if (options.release !== false) {
        await this.handOver([...this.held.values()], 'stopping');
        await this.deleteMember();
      }
      this.client.close();
    })();
    return this.stopping;
  }

  private async loop(firstPass: () => void): Promise<void> {
    while (!this.stopped) {
      const started = this.now();
      try {
        await this.pass();
      } catch (err) {
        this.logger.warn('shard coordination pass failed', { error: errorMessage(err) });
      }
      firstPass();
      if (this.stopped) break;
      await this.pause.sleep(Math.max(0, this.retryPeriod - (this.now() - started)));
    }
  }

  /**
   * One pass: renew what is held (first: it is what the fences wait for), read
   * the group's Leases, drop shards someone else has taken, then release
   * extras or acquire free shards according to the plan.
   */
  private async pass(): Promise<void> {
    await Promise.all([
      ...[...this.held.values()].map((t) => this.limiter.execute(() => this.renew(t))),
      this.renewMember(),
    ]);
    const leases = await this.listLeases();
    if (!leases || this.stopped) return;
    const now = this.now();
    const members: string[] = [this.identity];
    const free = new Set<number>();
    const byShard = new Map<number, Lease>();
    const staleMembers: Lease[] = [];
    for (const lease of leases) {
      const expiresAt = this.expiry.expiresAt(lease, this.leaseSeconds);
      const holder = lease.spec.holderIdentity ?? '';
      const role = lease.metadata.labels?.[LABEL_SHARD_LEASE_ROLE];
      if (role === 'member') {
        if (holder === this.identity || holder === '') continue;
        if (now < expiresAt) members.push(holder);
        // Member Leases of replicas long gone (a rollout renames Pods) would pile up: the first to notice deletes.
        else if (now >= expiresAt + this.leaseDuration) staleMembers.push(lease);
        continue;
      }
      const shard = shardOfLeaseName(this.prefix, lease.metadata.name, this.shardCount);
      if (role !== 'shard' || shard === undefined) continue;
      byShard.set(shard, lease);
      const tenure = this.held.get(shard);
      if (tenure && holder !== this.identity) {
        // Taken over (our Lease expired on the server): stop writing now, not at our deadline.
        this.lose(tenure, `the Lease is held by ${holder || 'nobody'}`);
      } else if (tenure && lease.metadata.resourceVersion !== tenure.lease.metadata.resourceVersion) {
        // Ours, newer than our copy (a renewal whose answer was lost): renew from this one.
        tenure.lease = lease;
      }
      if (holder === '' || now >= expiresAt || (holder === this.identity && !this.held.has(shard))) free.add(shard);
    }
    for (let shard = 0; shard < this.shardCount; shard++) if (!byShard.has(shard)) free.add(shard);
    this.liveMembers = [...new Set(members)].sort();

    const held = new Set([...this.held.values()].filter((t) => t.fence.holds()).map((t) => t.shard));
    const plan = planShards({
      shardCount: this.shardCount,
      identity: this.identity,
      members: this.liveMembers,
      held,
      free,
    });
    const gained: number[] = [];
    await Promise.all([
      this.handOver(
        plan.release.flatMap((shard) => this.held.get(shard) ?? []),
        'over this replica’s share',
      ),
      ...plan.acquire.map((shard) =>
        this.limiter.execute(async () => {
          if (await this.acquire(shard, byShard.get(shard))) gained.push(shard);
        }),
      ),
      ...staleMembers.map((lease) => this.limiter.execute(() => this.deleteStaleMember(lease))),
    ]);
    if (gained.length > 0) {
      this.logger.info('acquired shards', { shards: gained.sort((a, b) => a - b), share: plan.share });
      this.notify();
    }
  }

  private async listLeases(): Promise<Lease[] | undefined> {
    try {
      const list = await this.leaseRequest<KubeList<Lease>>('GET', this.leasesPath, {
        labelSelector: `${LABEL_SHARD_LEASE_GROUP}=${this.prefix}`,
      });
      return list.items;
    } catch (err) {
      this.logger.debug('could not list the shard Leases', { error: errorMessage(err) });
      return undefined;
    }
  }

  private labels(role: 'member' | 'shard'): Record<string, string> {
    return { [LABEL_SHARD_LEASE_GROUP]: this.prefix, [LABEL_SHARD_LEASE_ROLE]: role };
  }

  /** The Lease `current` (or a new one) rewritten as held by us from `now`; a new acquisition when `acquiring`. */
  private asHeldByUs(name: string, role: 'member' | 'shard', current: Lease | undefined, acquiring: boolean): Lease {
    const now = microTime(new Date());
    const previous = current?.spec.holderIdentity ?? '';
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        ...(current?.metadata ?? {}),
        name,
        namespace: this.options.namespace,
        labels: { ...(current?.metadata.labels ?? {}), ...this.labels(role) },
      },
      spec: {
        ...(current?.spec ?? {}),
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseSeconds,
        renewTime: now,
        ...(acquiring || !current
          ? {
              acquireTime: now,
              // Every change of holder counts, a hand-over through a cleared Lease too: the moves can be read off the Leases.
              leaseTransitions: current
                ? (current.spec.leaseTransitions ?? 0) + (previous === this.identity ? 0 : 1)
                : 0,
            }
          : {}),
      },
    };
  }

  /** Wins a free shard's Lease (create, or compare-and-swap on what the list showed); false if another won. */
  private async acquire(shard: number, listed: Lease | undefined): Promise<boolean> {
    if (this.stopped) return false;
    const name = shardLeaseName(this.prefix, shard);
    const body = this.asHeldByUs(name, 'shard', listed, true);
    const sentAt = this.now();
    try {
      const written = listed
        ? await this.leaseRequest<Lease>('PUT', `${this.leasesPath}/${name}`, undefined, body)
        : await this.leaseRequest<Lease>('POST', this.leasesPath, undefined, body);
      return this.won(shard, written, sentAt);
    } catch (err) {
      // AlreadyExists or Conflict: another replica was quicker, which is fine. Anything else: next pass.
      if (!isAlreadyExists(err) && !isConflict(err))
        this.logger.debug('could not acquire a shard Lease', { shard, error: errorMessage(err) });
      return false;
    }
  }

  /** Starts a tenure for a Lease just won (unless stopping, or the answer came too late to be of use). */
  private won(shard: number, lease: Lease, sentAt: number): boolean {
    const tenure: Tenure = {
      shard,
      lease,
      fence: new LeaseFence({
        renewDeadlineMs: this.renewDeadline,
        now: this.now,
        notHeld: () => new NotShardOwnerError(shard),
        endReason: () => new NotShardOwnerError(shard),
        onExpired: (why) => this.afterLoss(tenure, why, true, 'warn'),
      }),
    };
    const previous = this.held.get(shard);
    if (previous) this.lose(previous, 'won again', false);
    // Kept even when won just as stop() came: stop() then releases it like any other.
    this.held.set(shard, tenure);
    return tenure.fence.renewed(sentAt);
  }

  /** Renews one held shard (compare-and-swap on our copy); a failure is left to the deadline. */
  private async renew(tenure: Tenure): Promise<void> {
    // Past its deadline (a process that resumes): lost, not renewed; the plan may win it back as a new tenure.
    if (!tenure.fence.holds()) return;
    const body = this.asHeldByUs(tenure.lease.metadata.name, 'shard', tenure.lease, false);
    const sentAt = this.now();
    try {
      const written = await this.leaseRequest<Lease>(
        'PUT',
        `${this.leasesPath}/${body.metadata.name}`,
        undefined,
        body,
      );
      if (tenure.fence.state === 'ended') return;
      tenure.lease = written;
      // A success seen only now, after a pause, may already be past its deadline: the fence ends it then.
      tenure.fence.renewed(sentAt);
    } catch (err) {
      this.logger.debug('could not renew a shard Lease', { shard: tenure.shard, error: errorMessage(err) });
    }
  }

  /**
   * Hands shards over: their fences fail first (listeners told, once), then
   * their Leases are cleared so that the next owner need not wait for expiry.
   */
  private async handOver(tenures: readonly Tenure[], why: string): Promise<void> {
    // One past its deadline may be someone else's already: it is dropped, and its Lease left to expire.
    const clearable = tenures.filter((t) => t.fence.holds());
    for (const tenure of tenures) this.lose(tenure, why, false, 'debug');
    if (tenures.length === 0) return;
    this.notify();
    this.logger.info('handing shards over', { shards: tenures.map((t) => t.shard).sort((a, b) => a - b), reason: why });
    await Promise.all(clearable.map((t) => this.limiter.execute(() => this.clearLease(t))));
  }

  private async clearLease(tenure: Tenure): Promise<void> {
    const path = `${this.leasesPath}/${tenure.lease.metadata.name}`;
    let lease: Lease | undefined = tenure.lease;
    for (let attempt = 0; attempt < 2 && lease; attempt++) {
      if (lease.spec.holderIdentity !== this.identity) return;
      try {
        await this.leaseRequest('PUT', path, undefined, {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
        });
        return;
      } catch (err) {
        if (!isConflict(err)) {
          this.logger.debug('could not release a shard Lease; it expires instead', {
            shard: tenure.shard,
            error: errorMessage(err),
          });
          return;
        }
        // Our copy was stale (a renewal whose answer was lost): read it again, clear it if still ours.
        lease = await this.leaseRequest<Lease>('GET', path).catch(() => undefined);
      }
    }
  }

  /** Keeps this replica's member Lease fresh: the others count it in the fair share while it is. */
  private async renewMember(): Promise<void> {
    const path = `${this.leasesPath}/${this.memberName}`;
    try {
      if (this.memberLease) {
        try {
          const body = this.asHeldByUs(this.memberName, 'member', this.memberLease, false);
          this.memberLease = await this.leaseRequest<Lease>('PUT', path, undefined, body);
          return;
        } catch (err) {
          if (!isConflict(err) && !isNotFound(err)) throw err;
          this.memberLease = undefined; // deleted as stale after a pause, or our copy is old: read it again
        }
      }
      let current: Lease | undefined;
      try {
        current = await this.leaseRequest<Lease>('GET', path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      const body = this.asHeldByUs(this.memberName, 'member', current, true);
      this.memberLease = current
        ? await this.leaseRequest<Lease>('PUT', path, undefined, body)
        : await this.leaseRequest<Lease>('POST', this.leasesPath, undefined, body);
    } catch (err) {
      this.logger.debug('could not renew the member Lease', { error: errorMessage(err) });
    }
  }

  private async deleteMember(): Promise<void> {
    try {
      await this.leaseRequest('DELETE', `${this.leasesPath}/${this.memberName}`);
    } catch (err) {
      if (!isNotFound(err))
        this.logger.warn('could not delete the member Lease; the others count this replica until it expires', {
          error: errorMessage(err),
        });
    }
  }

  private async deleteStaleMember(lease: Lease): Promise<void> {
    try {
      await this.leaseRequest('DELETE', `${this.leasesPath}/${lease.metadata.name}`, undefined, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { resourceVersion: lease.metadata.resourceVersion },
      });
      this.expiry.forget(lease.metadata.name);
      this.logger.info('deleted the member Lease of a replica gone', { lease: lease.metadata.name });
    } catch (err) {
      this.logger.debug('could not delete a stale member Lease', {
        lease: lease.metadata.name,
        error: errorMessage(err),
      });
    }
  }

  /** Ends a tenure at once: its fence fails, its writes in flight abort; then listeners are told. */
  private lose(tenure: Tenure, why: string, notify = true, level: 'debug' | 'warn' = 'warn'): void {
    if (tenure.fence.end(why) !== 'ended') this.afterLoss(tenure, why, notify, level);
  }

  /** A tenure ended (its fence fired, by `lose` or at its renew deadline): forgotten, and listeners told. */
  private afterLoss(tenure: Tenure, why: string, notify: boolean, level: 'debug' | 'warn'): void {
    if (this.held.get(tenure.shard) === tenure) this.held.delete(tenure.shard);
    this.logger[level]('no longer holding a shard', { shard: tenure.shard, reason: why, identity: this.identity });
    if (notify) this.notify();
  }

  /**
   * Tells the listeners, in a later microtask (never from inside a caller's
   * assertHeld()), the set as it is at the time of the change.
   */
  private notify(): void {
    const owned: ReadonlySet<number> = new Set(
      [...this.held.values()].filter((t) => t.fence.state !== 'ended').map((t) => t.shard),
    );
    queueMicrotask(() => {
      for (const listener of [...this.listeners]) {
        try {
          listener(owned);
        } catch (err) {
          this.logger.error('a shard ownership listener failed', { error: errorMessage(err) });
        }
      }
    });
  }

  /** One Lease request: it ends within one retry period, so a pass cannot stall the renewals behind it. */
  private leaseRequest<T>(method: string, path: string, query?: Record<string, string>, body?: unknown): Promise<T> {
    return leaseRequest<T>(this.client, method, path, {
      what: 'a shard Lease',
      timeoutMs: this.retryPeriod,
      query,
      body,
    });
  }
}
