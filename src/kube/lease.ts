// coordination.k8s.io Leases, as the leader elector (src/controller/leader.ts)
// and the shard coordinator (src/sharding/coordinator.ts) both use them: the
// object, its timestamps, the holder's own client and one bounded request, the
// expiry of others' Leases, the wait between passes, and the write fence of one
// holding. One fence for both, so that a paused leader and a paused shard
// owner stop writing by the same rule: the renew deadline, enforced by a timer
// and, for a process that ran no timers while it was stopped, by the monotonic
// clock on every write (`assertHeld`, which `KubeClient.withFence` calls).
import { setMaxListeners } from 'node:events';
import { DeadlineError } from '../api/errors.js';
import { KubeClient, type WriteFence } from './client.js';
import type { KubeAuth } from './config.js';

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** The collection path of the Leases of a namespace. */
export const leasesPath = (namespace: string): string => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;

/** A Lease timestamp (MicroTime: six fractional digits, as client-go writes them). */
export const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/**
 * The Lease holder's own client and connections, with no rate limit: renewals
 * never queue behind the workers' requests, and audit logs tell Lease traffic
 * from the workers' writes by its User-Agent.
 */
export function leaseClient(auth: KubeAuth, options: { maxSockets: number; userAgent: string }): KubeClient {
  return new KubeClient(auth, { qps: 0, ...options });
}

export interface LeaseRequestOptions {
  /** The Lease, for the deadline's message ("the leader Lease", "a shard Lease"). */
  what: string;
  /** The request fails with DeadlineError after this long (a pass must not stall the renewals behind it). */
  timeoutMs: number;
  query?: Record<string, string>;
  body?: unknown;
  /** Ends the request at once when it fires, with its reason (the holder's fence: a holding that ended). */
  signal?: AbortSignal;
}

/**
 * One Lease request on the holder's own client, ending within `timeoutMs`. (A
 * listener removed afterwards, not AbortSignal.any: on Node 20 every signal
 * combined with a long-lived one stays referenced by it.)
 */
export async function leaseRequest<T>(
  client: KubeClient,
  method: string,
  path: string,
  options: LeaseRequestOptions,
): Promise<T> {
  const { what, timeoutMs, query, body, signal: parent } = options;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DeadlineError(`${method} of ${what} took longer than ${timeoutMs} ms`)),
    timeoutMs,
  );
  const onParentAbort = () => controller.abort(parent?.reason);
  parent?.addEventListener('abort', onParentAbort, { once: true });
  if (parent?.aborted) onParentAbort();
  try {
    return await client.request<T>(method, path, { query, body, signal: controller.signal });
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParentAbort);
  }
}

/**
 * When others' Leases expire, judged as client-go's leader election judges it:
 * a Lease expires when its holder and renew time have not changed for its
 * lease duration, measured on this process's own monotonic clock from when it
 * saw the last change (other hosts' timestamps are never compared with ours).
 */
export class LeaseExpiry {
  private readonly seen = new Map<string, { holder: string; renewTime: string; at: number }>();

  constructor(private readonly now: () => number) {}

  /**
   * Notes the Lease as just read; returns the monotonic time at which it
   * expires (after its own leaseDurationSeconds, else `defaultSeconds`).
   */
  expiresAt(lease: Lease, defaultSeconds: number): number {
    const holder = lease.spec.holderIdentity ?? '';
    const renewTime = lease.spec.renewTime ?? '';
    let seen = this.seen.get(lease.metadata.name);
    if (!seen || seen.holder !== holder || seen.renewTime !== renewTime) {
      seen = { holder, renewTime, at: this.now() };
      this.seen.set(lease.metadata.name, seen);
    }
    return seen.at + (lease.spec.leaseDurationSeconds ?? defaultSeconds) * 1000;
  }

  /** A Lease deleted: nothing to remember of it. */
  forget(name: string): void {
    this.seen.delete(name);
  }
}

/** The wait between two passes of a Lease loop, which `wake` (a stop, a loss) cuts short. */
export class LoopSleep {
  private wakeUp: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  wake(): void {
    this.wakeUp?.();
  }
}

export interface LeaseFenceOptions {
  /** A holding ends when no renewal sent within this long has succeeded. */
  renewDeadlineMs: number;
  /** The monotonic clock, in milliseconds (tests move it forward to simulate a paused process). */
  now: () => number;
  /** What `assertHeld` throws when the Lease is not held (not yet, or no more). */
  notHeld: () => Error;
  /** The reason the signal fires with when the holding ends for `why`. */
  endReason: (why: string) => Error;
  /** Told when the fence itself ends the holding (the renew deadline passed), after the signal fired. */
  onExpired?: (why: string) => void;
}

/** `idle`: never held yet; `held`: won and not ended (its deadline is checked on use); `ended`: for good. */
export type LeaseFenceState = 'idle' | 'held' | 'ended';

/**
 * The write fence of one holding of a Lease, from winning it to losing it.
 *
 * The holding lasts, as far as the holder's writes go, only until the renew
 * deadline after the moment the holder *sent* its last successful renewal:
 * the server applied that renewal no earlier, and no other replica takes the
 * Lease over before the lease duration after it saw that renewal, which is
 * later. A fence that ended never passes again; a new holding needs a new fence.
 */
export class LeaseFence implements WriteFence {
  /** Fires when the holding ends: writes in flight are cut off. */
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private current: LeaseFenceState = 'idle';
  /** Monotonic time at which the last successful acquire or renew was sent. */
  private renewedAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LeaseFenceOptions) {
    this.signal = this.controller.signal;
    // Every write in flight listens on it (and lets go when done): many at once is normal, not a leak.
    setMaxListeners(0, this.signal);
  }

  get state(): LeaseFenceState {
    return this.current;
  }

  /**
   * An acquisition or renewal sent at `sentAt` (monotonic) succeeded: the
   * holding starts, or its deadline moves on from then. Returns whether it is
   * held now: a success seen only after a pause may already be past its deadline.
   */
  renewed(sentAt: number): boolean {
    if (this.current === 'ended') return false;
    this.renewedAt = sentAt;
    this.current = 'held';
    if (!this.holds()) return false;
    this.armTimer();
    return true;
  }

  /** Held: won, not ended, and the last successful renewal was sent less than the renew deadline ago. */
  holds(): boolean {
    if (this.current !== 'held') return false;
    // Checked against the clock, not only by the timer: a process that was stopped ran no timers.
    if (this.options.now() - this.renewedAt >= this.options.renewDeadlineMs) {
      const why = `no renewal succeeded within the renew deadline (${this.options.renewDeadlineMs} ms)`;
      this.end(why);
      this.options.onExpired?.(why);
      return false;
    }
    return true;
  }

  /** The check before every write. */
  assertHeld(): void {
    if (!this.holds()) throw this.options.notHeld();
  }

  /**
   * Ends the holding at once: no more writes, writes in flight aborted with
   * `reason`. Returns the state it was in, so the holder does its own
   * bookkeeping once ('ended': it already was).
   */
  end(why: string, reason: Error = this.options.endReason(why)): LeaseFenceState {
    const was = this.current;
    if (was === 'ended') return was;
    this.current = 'ended';
    this.clearTimer();
    this.controller.abort(reason);
    return was;
  }

  private armTimer(): void {
    this.clearTimer();
    const remaining = this.renewedAt + this.options.renewDeadlineMs - this.options.now();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        // holds() ends the holding if the deadline has passed; a timer that fired early is armed again.
        if (this.holds()) this.armTimer();
      },
      Math.max(0, Math.ceil(remaining)),
    );
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
