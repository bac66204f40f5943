// Failover over a list of targets, for any provider: one client per target
// (the primary, then the store's `failover` entries in order; a target is a
// region and an optional endpoint, so two endpoints of one region are two
// targets) and a circuit breaker per store, provider and target, so a dead
// target is skipped until a probe finds it back. Only what the provider calls
// an availability error (network, 5xx, throttling) moves a call on to the next
// target; not found, access denied and configuration errors are answered by
// the first target asked.
//
// The breakers and the "active target" live in a process-wide registry, not in
// the client: the controller rebuilds clients (spec changes, credential age,
// after errors), and a rebuilt client must not forget that a target is down.
// Used by the AWS providers (aws/failover.ts adds their error rule and regional
// endpoints), Vault (one target per address, all in region "vault") and IBM
// Cloud Secrets Manager (one target per instance); the controller sees it only
// through the provider contract (Provider.stats, Provider.forgetStore, and
// moves reported to ProviderContext.onFailover).
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { CircuitBreakerSpec } from '../api/types.js';
import { raceAbort, throwIfAborted } from '../api/abort.js';
import type { FailoverMove, ServedRegion } from './provider.js';

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

/** A resolved failover target: the primary, or a `failover` entry with its region filled in. */
export interface RegionTarget {
  region: string;
  /** Absent: the region's AWS endpoint. */
  endpoint?: string;
}

/** Whether two targets are the same region and endpoint. */
export function sameTarget(a: RegionTarget, b: RegionTarget): boolean {
  return a.region === b.region && (a.endpoint ?? '') === (b.endpoint ?? '');
}

/** The host (and port) of an endpoint URL, for status, Events and metrics: no scheme, path or user info. */
export function endpointHost(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return '(invalid endpoint)';
  }
}

/** A store moved: `to` served a call after `from` had served the ones before. */
export type FailoverEvent = FailoverMove;

/** One breaker's state for metrics. */
export interface CircuitStats {
  provider: string;
  store: string;
  region: string;
  /** The host of the target's explicit endpoint; '' for the region's AWS endpoint. */
  endpoint: string;
  open: boolean;
}

interface BreakerEntry {
  policy: CircuitBreakerPolicy;
  settings: BreakerSettings;
  provider: string;
  store: string;
  target: RegionTarget;
}

/** Breakers and active targets of every store in this process. */
export class RegionHealth {
  private readonly breakers = new Map<string, BreakerEntry>();
  private readonly active = new Map<string, RegionTarget>();

  /**
   * The breaker of one store+provider+target (region and endpoint); a changed setting replaces it (closed).
   * `isAvailable` says which failures count (the provider's own availability errors).
   */
  breaker(
    store: string,
    provider: string,
    target: RegionTarget,
    settings: BreakerSettings,
    isAvailable: (err: unknown) => boolean,
  ): CircuitBreakerPolicy {
    const key = JSON.stringify([store, provider, target.region, target.endpoint ?? '']);
    const existing = this.breakers.get(key);
    if (
      existing &&
      existing.settings.failureThreshold === settings.failureThreshold &&
      existing.settings.openSeconds === settings.openSeconds
    ) {
      return existing.policy;
    }
    const policy = circuitBreaker(handleWhen(isAvailable), {
      halfOpenAfter: settings.openSeconds * 1000,
      breaker: new ConsecutiveBreaker(settings.failureThreshold),
    });
    this.breakers.set(key, { policy, settings, provider, store, target: { ...target } });
    return policy;
  }

  /** The target that served this store's latest call (undefined before the first). */
  activeTarget(store: string, provider: string): RegionTarget | undefined {
    return this.active.get(JSON.stringify([store, provider]));
  }

  /** Records who served a call; returns the move when the store changed target. */
  served(store: string, provider: string, target: RegionTarget, primary: RegionTarget): FailoverEvent | undefined {
    const key = JSON.stringify([store, provider]);
    const from = this.active.get(key) ?? primary;
    this.active.set(key, { ...target });
    if (sameTarget(from, target)) return undefined;
    return {
      provider,
      store,
      from: from.region,
      to: target.region,
      ...(from.endpoint !== undefined ? { fromEndpoint: endpointHost(from.endpoint) } : {}),
      ...(target.endpoint !== undefined ? { toEndpoint: endpointHost(target.endpoint) } : {}),
      toPrimary: sameTarget(target, primary),
    };
  }

  stats(): CircuitStats[] {
    return [...this.breakers.values()].map((b) => ({
      provider: b.provider,
      store: b.store,
      region: b.target.region,
      endpoint: b.target.endpoint !== undefined ? endpointHost(b.target.endpoint) : '',
      // Open until a probe is let through (half-open); cockatiel moves on lazily, at the next call.
      open: b.policy.state === CircuitState.Open || b.policy.state === CircuitState.HalfOpen,
    }));
  }

  /** The store was deleted or changed (by `storeLabel`). */
  forget(store: string): void {
    for (const [key, entry] of this.breakers) if (entry.store === store) this.breakers.delete(key);
    for (const key of [...this.active.keys()]) if ((JSON.parse(key) as string[])[0] === store) this.active.delete(key);
  }
}

/** Breakers and active targets of every store in this process (every provider with failover uses it). */
export const regionHealth = new RegionHealth();

/** One target's client. */
export interface RegionalClient<C> {
  target: RegionTarget;
  client: C;
}

export interface RegionalOptions {
  /** `storeLabel(store)`. */
  store: string;
  /** The provider's name (`awsSecretsManager`, `vault`, `ibmSecretsManager`, …). */
  provider: string;
  settings: BreakerSettings;
  health?: RegionHealth;
  /** Told about each move (ProviderContext.onFailover). Must not throw; a throw is ignored. */
  onFailover?: (event: FailoverEvent) => void;
  /** Whether an error means the target is unavailable (moves on to the next one and counts against its breaker). */
  isAvailable: (err: unknown) => boolean;
  /** The host a target is reached at, for status and messages. Default: its endpoint's host, else its region. */
  hostOf?: (target: RegionTarget) => string;
  /**
   * Every target tried failed: what to throw, given the last target's error and
   * the others (described as in messages). Default: the last error as it is.
   */
  onExhausted?: (last: unknown, others: string[]) => unknown;
}

/**
 * A call in several regions or endpoints: tried at the primary first, then at
 * each failover target in order, skipping targets whose circuit is open. With
 * one target (no `failover`), calls go straight to it: no breaker, nothing
 * changes.
 */
export class RegionalClients<C> {
  private readonly health: RegionHealth;
  private lastServed: RegionTarget;

  constructor(
    readonly regions: RegionalClient<C>[],
    private readonly options: RegionalOptions,
  ) {
    if (regions.length === 0) throw new Error('RegionalClients needs at least one target');
    this.health = options.health ?? regionHealth;
    this.lastServed = this.health.activeTarget(options.store, options.provider) ?? this.primary.target;
  }

  get primary(): RegionalClient<C> {
    return this.regions[0] as RegionalClient<C>;
  }

  /**
   * The region (and, when this store lists several endpoints in it, the
   * endpoint host) that answered the latest call; undefined without failover.
   */
  servedRegion(): ServedRegion | undefined {
    if (this.regions.length === 1) return undefined;
    const served = this.lastServed;
    return {
      region: served.region,
      ...(this.sharesRegion(served) ? { endpoint: this.hostOf(served) } : {}),
      primary: sameTarget(served, this.primary.target),
    };
  }

  /** A target in messages: its region, with the endpoint host when the region alone is ambiguous. */
  describe(target: RegionTarget): string {
    return this.sharesRegion(target) ? `${target.region} (${this.hostOf(target)})` : target.region;
  }

  private hostOf(target: RegionTarget): string {
    if (this.options.hostOf) return this.options.hostOf(target);
    return target.endpoint !== undefined ? endpointHost(target.endpoint) : target.region;
  }

  /** Whether another of this store's targets is in the same region. */
  private sharesRegion(target: RegionTarget): boolean {
    return this.regions.filter((r) => r.target.region === target.region).length > 1;
  }

  /**
   * Runs `call` against the first usable target. `applies` may rule a target
   * out for this call (a KMS ciphertext under a single-Region key decrypts only
   * in its own region). When every applicable circuit is open, they are tried
   * in order anyway: nothing else could answer. The error of the last target
   * tried is thrown (or what `onExhausted` makes of it and the others tried).
   * An aborted `signal` stops at once: no further target is asked, and a
   * cancelled call never counts against a breaker.
   */
  async run<T>(
    call: (client: C, target: RegionTarget) => Promise<T>,
    applies?: (target: RegionTarget) => boolean,
    signal?: AbortSignal,
  ): Promise<T> {
    const what = `${this.options.store} (${this.options.provider})`;
    const isAvailable = this.options.isAvailable;
    const attempt = (r: RegionalClient<C>, guarded: boolean): Promise<T> => {
      throwIfAborted(signal, what);
      const once = () => raceAbort(call(r.client, r.target), signal, what);
      return guarded ? this.breaker(r).execute(once) : once();
    };
    if (this.regions.length === 1) return this.served(this.primary, await attempt(this.primary, false));
    const candidates = this.regions.filter((r, i) => i === 0 || !applies || applies(r.target));
    const failed: { target: RegionTarget; error: unknown }[] = [];
    const skipped: RegionalClient<C>[] = [];
    for (const r of candidates) {
      try {
        return this.served(r, await attempt(r, true));
      } catch (err) {
        if (err instanceof BrokenCircuitError) {
          skipped.push(r);
          continue;
        }
        if (!isAvailable(err)) throw err;
        failed.push({ target: r.target, error: err });
      }
    }
    if (failed.length === 0) {
      // Every circuit open: try them in order without the breakers' permission.
      for (const r of skipped) {
        try {
          return this.served(r, await attempt(r, false));
        } catch (err) {
          if (!isAvailable(err)) throw err;
          failed.push({ target: r.target, error: err });
        }
      }
    }
    const last = failed[failed.length - 1]?.error;
    if (failed.length > 1 && this.options.onExhausted)
      throw this.options.onExhausted(
        last,
        failed.slice(0, -1).map((f) => this.describe(f.target)),
      );
    throw last;
  }

  /**
   * Runs `call` at the primary only (writes that must not land on a
   * secondary), through its breaker: while its circuit is open this throws
   * cockatiel's BrokenCircuitError without asking it; an aborted `signal` stops at once.
   */
  async runAtPrimary<T>(call: (client: C, target: RegionTarget) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const what = `${this.options.store} (${this.options.provider})`;
    const r = this.primary;
    throwIfAborted(signal, what);
    const once = () => raceAbort(call(r.client, r.target), signal, what);
    return this.served(r, this.regions.length === 1 ? await once() : await this.breaker(r).execute(once));
  }

  private breaker(r: RegionalClient<C>): CircuitBreakerPolicy {
    return this.health.breaker(
      this.options.store,
      this.options.provider,
      r.target,
      this.options.settings,
      this.options.isAvailable,
    );
  }

  private served<T>(r: RegionalClient<C>, value: T): T {
    this.lastServed = r.target;
    if (this.regions.length > 1) {
      const move = this.health.served(this.options.store, this.options.provider, r.target, this.primary.target);
      if (move) {
        try {
          this.options.onFailover?.(move);
        } catch {
          // Reporting must not turn a served call into a failure.
        }
      }
    }
    return value;
  }
}
