import { isAlreadyExists, isNotFound, type KubeClient } from '../kube/client.js';
import type { Logger } from '../observability/logger.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const microTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: a
 * standby takes over when the holder has not renewed within the lease
 * duration, measured on the standby's own clock from when it last saw the
 * record change (so clock skew between nodes does not matter).
 */
export class LeaderElector {
  private readonly leaseDuration: number;
  private readonly renewDeadline: number;
  private readonly retryPeriod: number;
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  private leading = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly path: string;

  constructor(
    private readonly client: KubeClient,
    private readonly options: LeaderElectionOptions,
    private readonly logger: Logger,
  ) {
    this.leaseDuration = (options.leaseDurationSeconds ?? 15) * 1000;
    this.renewDeadline = (options.renewDeadlineSeconds ?? 10) * 1000;
    this.retryPeriod = (options.retryPeriodSeconds ?? 2) * 1000;
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${options.namespace}/leases/${options.name}`;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until elected, calls `onStartedLeading`, then renews; resolves
   * with 'lost' when renewal fails past the deadline, or 'stopped' after `stop`.
   */
  async run(onStartedLeading: () => void): Promise<'lost' | 'stopped'> {
    let acquired = false;
    while (!this.stopped) {
      if ((acquired = await this.tryAcquireOrRenew())) break;
      await this.sleep(this.retryPeriod);
    }
    // Won just as stop() came: we hold the Lease, so release() must hand it over.
    if (acquired) this.leading = true;
    if (this.stopped) return 'stopped';
    this.logger.info('became leader', {
      lease: `${this.options.namespace}/${this.options.name}`,
      identity: this.options.identity,
    });
    onStartedLeading();
    let lastRenew = Date.now();
    while (!this.stopped) {
      await this.sleep(this.retryPeriod);
      if (this.stopped) break;
      if (await this.tryAcquireOrRenew()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > this.renewDeadline) {
        this.leading = false;
        this.logger.error('lost the leader Lease', { lease: `${this.options.namespace}/${this.options.name}` });
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** Stops campaigning or renewing; `release` then hands the Lease over at once. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** Gives up the Lease so a standby need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.get<Lease>(this.path);
      if (lease.spec.holderIdentity !== this.options.identity) return;
      lease.spec.holderIdentity = '';
      lease.spec.leaseDurationSeconds = 1;
      lease.spec.renewTime = microTime(new Date());
      await this.client.request('PUT', this.path, { body: lease });
      this.logger.info('released the leader Lease', { lease: `${this.options.namespace}/${this.options.name}` });
    } catch (err) {
      this.logger.warn('could not release the leader Lease; a standby takes over when it expires', {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const leaseSeconds = Math.round(this.leaseDuration / 1000);
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(this.path);
    } catch (err) {
      if (!isNotFound(err)) return false;
      try {
        await this.client.request('POST', `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases`, {
          body: {
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
          },
        });
        return true;
      } catch (createErr) {
        if (!isAlreadyExists(createErr))
          this.logger.warn('could not create the leader Lease', { error: String(createErr) });
        return false;
      }
    }

    const holder = lease.spec.holderIdentity ?? '';
    const renewTime = lease.spec.renewTime ?? '';
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: Date.now() };
    }
    const heldByOther = holder !== '' && holder !== this.options.identity;
    const duration = (lease.spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
    if (heldByOther && Date.now() < this.observed.at + duration) return false;

    const takingOver = holder !== this.options.identity;
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
      await this.client.request('PUT', this.path, { body: lease });
      return true;
    } catch {
      return false;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
