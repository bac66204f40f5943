// Leader election with a fence. Only one replica may write; a replica that was
// paused (SIGSTOP, a long GC, a frozen VM) or cut off from the API server must
// stop writing before a standby can take the Lease over. The elector therefore
// has its own client (the workers' rate limit cannot delay a renewal), every
// Lease request has a deadline, and the renew deadline is enforced by a timer
// and, for a process that ran no timers while it was stopped, by comparing the
// monotonic clock on every write (`fence.assertHeld()`): the LeaseFence of
// src/kube/lease.ts, which the shard coordinator's shards use too.
import { performance } from 'node:perf_hooks';
import { NotLeaderError, SecretsyncError } from '../api/errors.js';
import { isAlreadyExists, isNotFound, type KubeClient, type WriteFence } from '../kube/client.js';
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

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;

export interface LeaderElectionTiming {
  /** How long a standby waits, from the last change it saw, before it takes the Lease over. */
  leaseDurationMs?: number;
  /** The leader stops writing when no renewal has succeeded for this long; must be below leaseDurationMs. */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew, and the longest any one Lease request may take. */
  retryPeriodMs?: number;
}

export interface LeaderElectionOptions extends LeaderElectionTiming {
  namespace: string;
  name: string;
  identity: string;
  /** User-Agent of the elector's own client (audit logs tell Lease traffic from the workers' writes). */
  userAgent?: string;
  /** A monotonic clock in milliseconds; tests move it forward to simulate a paused process. */
  monotonicNow?: () => number;
}

/** The timing cannot keep a paused leader from writing after a standby has taken over. */
export class LeaderElectionTimingError extends SecretsyncError {
  constructor(message: string) {
    super('InvalidLeaderElectionTiming', 'terminal', message);
    this.name = 'LeaderElectionTimingError';
  }
}

/**
 * Checks retryPeriod < renewDeadline < leaseDuration: the leader must give up
 * (renew deadline) before a standby may take over (lease duration), and must
 * get more than one attempt at renewing before it gives up.
 */
export function validateLeaderElectionTiming(timing: Required<LeaderElectionTiming>): void {
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = timing;
  for (const [flag, value] of [
    ['--lease-duration', leaseDurationMs],
    ['--renew-deadline', renewDeadlineMs],
    ['--retry-period', retryPeriodMs],
  ] as const) {
    if (!Number.isFinite(value) || value <= 0)
      throw new LeaderElectionTimingError(`leader election: ${flag} must be a positive duration, got ${value} ms`);
  }
  if (renewDeadlineMs >= leaseDurationMs)
    throw new LeaderElectionTimingError(
      `leader election: --renew-deadline (${renewDeadlineMs} ms) must be shorter than --lease-duration (${leaseDurationMs} ms), ` +
        'or a paused leader could still write after a standby took the Lease over',
    );
  if (retryPeriodMs >= renewDeadlineMs)
    throw new LeaderElectionTimingError(
      `leader election: --retry-period (${retryPeriodMs} ms) must be shorter than --renew-deadline (${renewDeadlineMs} ms), ` +
        'or the leader gets no second attempt to renew before it gives up',
    );
}

/** The timing with its defaults filled in, checked by validateLeaderElectionTiming. */
export function resolveLeaderElectionTiming(timing: LeaderElectionTiming): Required<LeaderElectionTiming> {
  const resolved = {
    leaseDurationMs: timing.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS,
    renewDeadlineMs: timing.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS,
    retryPeriodMs: timing.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS,
  };
  validateLeaderElectionTiming(resolved);
  return resolved;
}

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: a
 * standby takes over when the holder has not renewed within the lease
 * duration, measured on the standby's own monotonic clock from when it last
 * saw the record change (so clock skew between nodes does not matter).
 *
 * The leader holds the Lease, as far as its own writes go, only until
 * `renewDeadline` after the moment it *sent* its last successful renewal: the
 * server applied that renewal no earlier, so no standby can take over before
 * that moment plus `leaseDuration`, which is later.
 */
export class LeaderElector {
  /** Guards every write of the workers' client (see `WriteFence`); its signal fires when leadership ends. */
  readonly fence: WriteFence;
  /** The same fence, with the holder's side of it (renewed, end). */
  private readonly holding: LeaseFence;
  private readonly client: KubeClient;
  private readonly leaseDuration: number;
  private readonly renewDeadline: number;
  private readonly retryPeriod: number;
  private readonly now: () => number;
  private readonly path: string;
  private readonly expiry: LeaseExpiry;
  private readonly pause = new LoopSleep();
  /** Leadership was lost (not released): run() resolves 'lost'. */
  private lost = false;
  private onLost: (() => void) | undefined;
  private stopped = false;

  constructor(
    auth: KubeAuth,
    private readonly options: LeaderElectionOptions,
    private readonly logger: Logger,
  ) {
    const timing = resolveLeaderElectionTiming(options);
    this.leaseDuration = timing.leaseDurationMs;
    this.renewDeadline = timing.renewDeadlineMs;
    this.retryPeriod = timing.retryPeriodMs;
    this.now = options.monotonicNow ?? (() => performance.now());
    this.expiry = new LeaseExpiry(this.now);
    this.client = leaseClient(auth, { maxSockets: 2, userAgent: options.userAgent ?? 'secretsync-leader-election' });
    this.path = `${leasesPath(options.namespace)}/${options.name}`;
    this.fence = this.holding = new LeaseFence({
      renewDeadlineMs: this.renewDeadline,
      now: this.now,
      notHeld: () => new NotLeaderError(),
      endReason: (why) => new NotLeaderError(`lost the leader Lease: ${why}`),
      onExpired: (why) => this.afterLoss(why, true),
    });
  }

  /** Whether this replica leads now: it won the Lease and its last renewal is within the renew deadline. */
  isLeader(): boolean {
    return this.holding.holds();
  }

  /**
   * Campaigns until elected, calls `onStartedLeading`, then renews; resolves
   * with 'lost' the moment the renew deadline passes without a successful
   * renewal (or another replica is seen holding the Lease), or with
   * 'stopped' after `stop`.
   */
  async run(onStartedLeading: () => void): Promise<'lost' | 'stopped'> {
    const lost = new Promise<'lost'>((resolve) => (this.onLost = () => resolve('lost')));
    return Promise.race([this.campaignAndRenew(onStartedLeading), lost]);
  }

  /** Stops campaigning or renewing; `release` then hands the Lease over at once. */
  stop(): void {
    this.stopped = true;
    this.pause.wake();
  }

  /**
   * Gives up the Lease so a standby need not wait for it to expire (only if it
   * is still held within the renew deadline), then closes the elector's client.
   */
  async release(): Promise<void> {
    try {
      if (!this.holding.holds()) return;
      // From here on this replica writes nothing more: the standby may take over at once.
      this.holding.end('released', new NotLeaderError('the leader Lease was released'));
      const lease = await this.leaseRequest<Lease>('GET', this.path);
      if (lease.spec.holderIdentity !== this.options.identity) return;
      lease.spec.holderIdentity = '';
      lease.spec.leaseDurationSeconds = 1;
      lease.spec.renewTime = microTime(new Date());
      await this.leaseRequest('PUT', this.path, lease);
      this.logger.info('released the leader Lease', { lease: this.leaseName() });
    } catch (err) {
      this.logger.warn('could not release the leader Lease; a standby takes over when it expires', {
        error: errorMessage(err),
      });
    } finally {
      this.client.close();
    }
  }

  private async campaignAndRenew(onStartedLeading: () => void): Promise<'lost' | 'stopped'> {
    let acquired = false;
    while (!this.stopped) {
      if ((acquired = await this.tryAcquireOrRenew())) break;
      await this.pause.sleep(this.retryPeriod);
    }
    // Won just as stop() came: we hold the Lease, so release() must hand it over.
    if (this.stopped) return 'stopped';
    if (!acquired || this.lost) return 'lost';
    this.logger.info('became leader', { lease: this.leaseName(), identity: this.options.identity });
    onStartedLeading();
    while (!this.stopped && !this.lost) {
      await this.pause.sleep(this.retryPeriod);
      if (this.stopped || this.lost) break;
      // A failure needs nothing here: the deadline timer (and assertHeld) end leadership on time.
      await this.tryAcquireOrRenew();
    }
    return this.lost ? 'lost' : 'stopped';
  }

  /** Ends leadership at once: no more writes, writes in flight aborted, run() resolves 'lost'. */
  private lose(why: string): void {
    const was = this.holding.end(why);
    if (was !== 'ended') this.afterLoss(why, was === 'held');
  }

  /** Leadership ended (the fence fired): run() resolves 'lost'. */
  private afterLoss(why: string, wasLeading: boolean): void {
    if (this.lost) return;
    this.lost = true;
    if (wasLeading)
      this.logger.error('lost the leader Lease', { lease: this.leaseName(), reason: why, stopped: this.stopped });
    this.onLost?.();
    this.pause.wake();
  }

  /** One Lease request: it ends within one retry period, and at once when leadership ends. */
  private leaseRequest<T>(method: string, path: string, body?: unknown): Promise<T> {
    return leaseRequest<T>(this.client, method, path, {
      what: 'the leader Lease',
      timeoutMs: this.retryPeriod,
      body,
      signal: this.holding.state === 'held' ? this.holding.signal : undefined,
    });
  }

  private leaseName(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const leaseSeconds = Math.ceil(this.leaseDuration / 1000);
    let lease: Lease;
    try {
      lease = await this.leaseRequest<Lease>('GET', this.path);
    } catch (err) {
      if (!isNotFound(err)) {
        this.logger.debug('could not read the leader Lease', { error: errorMessage(err) });
        return false;
      }
      const sentAt = this.now();
      const now = new Date();
      try {
        await this.leaseRequest('POST', leasesPath(this.options.namespace), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.options.name, namespace: this.options.namespace },
          spec: {
            holderIdentity: this.options.identity,
            leaseDurationSeconds: leaseSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        this.holding.renewed(sentAt);
        return true;
      } catch (createErr) {
        if (!isAlreadyExists(createErr))
          this.logger.warn('could not create the leader Lease', { error: errorMessage(createErr) });
        return false;
      }
    }

    const holder = lease.spec.holderIdentity ?? '';
    const expiresAt = this.expiry.expiresAt(lease, leaseSeconds);
    const heldByOther = holder !== '' && holder !== this.options.identity;
    if (heldByOther && this.holding.state === 'held') {
      // Another replica has taken over (our Lease expired on the server): stop writing now, not at our deadline.
      this.lose(`the Lease is held by ${holder}`);
      return false;
    }
    if (heldByOther && this.now() < expiresAt) return false;

    const takingOver = holder !== this.options.identity;
    const sentAt = this.now();
    const now = new Date();
    lease.spec = {
      ...lease.spec,
      holderIdentity: this.options.identity,
      leaseDurationSeconds: leaseSeconds,
      renewTime: microTime(now),
      ...(takingOver
        ? {
            acquireTime: microTime(now),
            leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (holder === '' ? 0 : 1),
          }
        : {}),
    };
    try {
      // The resourceVersion in the body makes this a compare-and-swap: two standbys cannot both win.
      await this.leaseRequest('PUT', this.path, lease);
      this.holding.renewed(sentAt);
      return true;
    } catch (err) {
      this.logger.debug('could not update the leader Lease', { error: errorMessage(err) });
      return false;
    }
  }
}
