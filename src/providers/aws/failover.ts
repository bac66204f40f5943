// Regional failover for the AWS providers: one SDK client per region (the
// primary, then the `failover` entries in order) and a circuit breaker per
// store, provider and region, so a dead region is skipped until a probe finds
// it back. Only availability errors (network, 5xx, throttling past the SDK's
// retries) move a call on to the next region; not found, access denied and
// configuration errors are answered by the first region asked.
//
// The breakers and the "active region" live in a process-wide registry, not in
// the client: the controller rebuilds clients (spec changes, credential age,
// after errors), and a rebuilt client must not forget that a region is down.
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { AwsFailoverTarget, CircuitBreakerSpec } from '../../api/types.js';
import type { ServedRegion } from '../provider.js';
import { isAvailabilityError } from './errors.js';

export const DEFAULT_FAILURE_THRESHOLD = 3;
export const DEFAULT_OPEN_SECONDS = 30;
/** Failover entries a block may list. */
export const MAX_FAILOVER_TARGETS = 4;

export interface BreakerSettings {
  failureThreshold: number;
  openSeconds: number;
}

export function breakerSettings(spec: CircuitBreakerSpec | undefined): BreakerSettings {
  return {
    failureThreshold: spec?.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD,
    openSeconds: spec?.openSeconds ?? DEFAULT_OPEN_SECONDS,
  };
}

/** A region moved: `to` served a call after `from` had served the ones before. */
export interface FailoverEvent {
  /** The provider whose client moved (`awsKms` for `decrypt.kms`). */
  provider: string;
  store: string;
  from: string;
  to: string;
  /** `to` is the block's own region (the primary is back). */
  toPrimary: boolean;
}

/** One breaker's state for metrics. */
export interface CircuitStats {
  provider: string;
  store: string;
  region: string;
  open: boolean;
}

interface BreakerEntry {
  policy: CircuitBreakerPolicy;
  settings: BreakerSettings;
  provider: string;
  store: string;
  region: string;
}

/** Breakers and active regions of every store in this process. */
export class RegionHealth {
  private readonly breakers = new Map<string, BreakerEntry>();
  private readonly active = new Map<string, string>();
  /** Called when a store's served region changes. Must not throw. */
  onFailover: ((event: FailoverEvent) => void) | undefined;

  /** The breaker of one store+provider+region; a changed setting replaces it (closed). */
  breaker(store: string, provider: string, region: string, settings: BreakerSettings): CircuitBreakerPolicy {
    const key = JSON.stringify([store, provider, region]);
    const existing = this.breakers.get(key);
    if (
      existing &&
      existing.settings.failureThreshold === settings.failureThreshold &&
      existing.settings.openSeconds === settings.openSeconds
    ) {
      return existing.policy;
    }
    const policy = circuitBreaker(handleWhen(isAvailabilityError), {
      halfOpenAfter: settings.openSeconds * 1000,
      breaker: new ConsecutiveBreaker(settings.failureThreshold),
    });
    this.breakers.set(key, { policy, settings, provider, store, region });
    return policy;
  }

  /** The region that served this store's latest call (undefined before the first). */
  activeRegion(store: string, provider: string): string | undefined {
    return this.active.get(JSON.stringify([store, provider]));
  }

  /** Records who served a call; reports a move. */
  served(store: string, provider: string, region: string, primary: string): void {
    const key = JSON.stringify([store, provider]);
    const from = this.active.get(key) ?? primary;
    this.active.set(key, region);
    if (from !== region) this.onFailover?.({ provider, store, from, to: region, toPrimary: region === primary });
  }

  stats(): CircuitStats[] {
    return [...this.breakers.values()].map((b) => ({
      provider: b.provider,
      store: b.store,
      region: b.region,
      // Open until a probe is let through (half-open); cockatiel moves on lazily, at the next call.
      open: b.policy.state === CircuitState.Open || b.policy.state === CircuitState.HalfOpen,
    }));
  }

  /** The store was deleted. */
  forget(store: string): void {
    for (const [key, entry] of this.breakers) if (entry.store === store) this.breakers.delete(key);
    for (const key of [...this.active.keys()]) if ((JSON.parse(key) as string[])[0] === store) this.active.delete(key);
  }
}

/** Breakers and active regions of every store in this process (the AWS providers use it). */
export const regionHealth = new RegionHealth();

/** One region's client. */
export interface RegionalClient<C> {
  target: AwsFailoverTarget;
  client: C;
}

export interface RegionalOptions {
  /** `storeLabel(store)`. */
  store: string;
  /** `awsSecretsManager`, `awsParameterStore`, `awsKms`. */
  provider: string;
  settings: BreakerSettings;
  health?: RegionHealth;
}

/**
 * A call in several regions: tried in the primary first, then in each failover
 * region in order, skipping regions whose circuit is open. With one region (no
 * `failover`), calls go straight to it: no breaker, nothing changes.
 */
export class RegionalClients<C> {
  private readonly health: RegionHealth;
  private lastServed: string;

  constructor(
    readonly regions: RegionalClient<C>[],
    private readonly options: RegionalOptions,
  ) {
    if (regions.length === 0) throw new Error('RegionalClients needs at least one region');
    this.health = options.health ?? regionHealth;
    this.lastServed = this.health.activeRegion(options.store, options.provider) ?? this.primary.target.region;
  }

  get primary(): RegionalClient<C> {
    return this.regions[0] as RegionalClient<C>;
  }

  /** The region that answered the latest call; undefined without failover regions. */
  servedRegion(): ServedRegion | undefined {
    if (this.regions.length === 1) return undefined;
    return { region: this.lastServed, primary: this.lastServed === this.primary.target.region };
  }

  /**
   * Runs `call` against the first usable region. `applies` may rule a region
   * out for this call (a KMS ciphertext under a single-Region key decrypts only
   * in its own region). When every applicable circuit is open, they are tried
   * in order anyway: nothing else could answer. The error of the last region
   * tried is thrown, naming the regions that were tried.
   */
  async run<T>(
    call: (client: C, target: AwsFailoverTarget) => Promise<T>,
    applies?: (target: AwsFailoverTarget) => boolean,
  ): Promise<T> {
    if (this.regions.length === 1)
      return this.served(this.primary, await call(this.primary.client, this.primary.target));
    const candidates = this.regions.filter((r, i) => i === 0 || !applies || applies(r.target));
    const failed: { region: string; error: unknown }[] = [];
    const skipped: RegionalClient<C>[] = [];
    for (const r of candidates) {
      const policy = this.breaker(r);
      try {
        return this.served(r, await policy.execute(() => call(r.client, r.target)));
      } catch (err) {
        if (err instanceof BrokenCircuitError) {
          skipped.push(r);
          continue;
        }
        if (!isAvailabilityError(err)) throw err;
        failed.push({ region: r.target.region, error: err });
      }
    }
    if (failed.length === 0) {
      // Every circuit open: try them in order without the breakers' permission.
      for (const r of skipped) {
        try {
          return this.served(r, await call(r.client, r.target));
        } catch (err) {
          if (!isAvailabilityError(err)) throw err;
          failed.push({ region: r.target.region, error: err });
        }
      }
    }
    const last = failed[failed.length - 1]?.error;
    if (failed.length > 1 && last instanceof Error) {
      const others = failed
        .slice(0, -1)
        .map((f) => f.region)
        .join(', ');
      last.message = `${last.message} (also unavailable: ${others})`;
    }
    throw last;
  }

  private breaker(r: RegionalClient<C>): CircuitBreakerPolicy {
    return this.health.breaker(this.options.store, this.options.provider, r.target.region, this.options.settings);
  }

  private served<T>(r: RegionalClient<C>, value: T): T {
    this.lastServed = r.target.region;
    if (this.regions.length > 1) {
      this.health.served(this.options.store, this.options.provider, r.target.region, this.primary.target.region);
    }
    return value;
  }
}

/** Whether a KMS key id is a multi-Region key (`mrk-…`, bare or in an ARN); only those have replicas. */
export function isMultiRegionKey(keyId: string): boolean {
  const id = keyId.startsWith('arn:') ? keyId.slice(keyId.lastIndexOf('/') + 1) : keyId;
  return id.startsWith('mrk-');
}

/**
 * The same multi-Region key in another region: a key ARN's region part is
 * replaced (`arn:aws:kms:us-east-1:111122223333:key/mrk-1` →
 * `arn:aws:kms:eu-west-1:111122223333:key/mrk-1`); a bare `mrk-` id stays as it
 * is (it names the replica in whatever region is asked). Anything else is
 * returned unchanged (only multi-Region keys have replicas).
 */
export function keyIdInRegion(keyId: string, region: string): string {
  if (!isMultiRegionKey(keyId)) return keyId;
  const parts = keyId.split(':');
  if (parts[0] !== 'arn' || parts.length < 6 || parts[2] !== 'kms') return keyId;
  parts[3] = region;
  return parts.join(':');
}
