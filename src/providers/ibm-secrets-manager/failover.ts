// A secondary Secrets Manager instance in another region: reads go to the
// primary, and to the store's `failover` instances in order while the
// primary's circuit is open; writes go only to the primary. The breakers
// (cockatiel, as the AWS providers use) and the instance that served last live
// in a process-wide registry, because the controller rebuilds clients and a
// rebuilt client must not forget that an instance is down. The AWS providers'
// RegionalClients does the same for regions; it is not imported here (it
// speaks AWS errors and regional endpoints), only its shape is followed.
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { CircuitBreakerSpec } from '../../api/types.js';
import { raceAbort, throwIfAborted } from '../../api/abort.js';
import { ProviderError, type FailoverMove, type ServedRegion } from '../provider.js';
import { IbmUnavailableError } from './http.js';

export const PROVIDER = 'ibmSecretsManager';

/** One instance: its service URL and the region it is in (or, for a custom URL, its host). */
export interface Instance {
  url: string;
  region: string;
}

export interface BreakerSettings {
  failureThreshold: number;
  openSeconds: number;
}

export function breakerSettings(spec: CircuitBreakerSpec | undefined): BreakerSettings {
  return { failureThreshold: spec?.failureThreshold ?? 3, openSeconds: spec?.openSeconds ?? 30 };
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}

interface Entry {
  policy: CircuitBreakerPolicy;
  settings: BreakerSettings;
  store: string;
  instance: Instance;
}

/** Breakers and the serving instance of every IBM store in this process. */
export class InstanceHealth {
  private readonly breakers = new Map<string, Entry>();
  private readonly active = new Map<string, Instance>();

  breaker(store: string, instance: Instance, settings: BreakerSettings): CircuitBreakerPolicy {
    const key = JSON.stringify([store, instance.url]);
    const existing = this.breakers.get(key);
    if (
      existing &&
      existing.settings.failureThreshold === settings.failureThreshold &&
      existing.settings.openSeconds === settings.openSeconds
    )
      return existing.policy;
    const policy = circuitBreaker(
      handleWhen((err) => err instanceof IbmUnavailableError),
      { halfOpenAfter: settings.openSeconds * 1000, breaker: new ConsecutiveBreaker(settings.failureThreshold) },
    );
    this.breakers.set(key, { policy, settings, store, instance });
    return policy;
  }

  activeInstance(store: string): Instance | undefined {
    return this.active.get(store);
  }

  served(store: string, instance: Instance, primary: Instance): FailoverMove | undefined {
    const from = this.active.get(store) ?? primary;
    this.active.set(store, instance);
    if (from.url === instance.url) return undefined;
    return {
      provider: PROVIDER,
      store,
      from: from.region,
      to: instance.region,
      fromEndpoint: hostOf(from.url),
      toEndpoint: hostOf(instance.url),
      toPrimary: instance.url === primary.url,
    };
  }

  stats(): { provider: string; store: string; region: string; endpoint: string; open: boolean }[] {
    return [...this.breakers.values()].map((e) => ({
      provider: PROVIDER,
      store: e.store,
      region: e.instance.region,
      endpoint: hostOf(e.instance.url),
      open: e.policy.state === CircuitState.Open || e.policy.state === CircuitState.HalfOpen,
    }));
  }

  forget(store: string): void {
    for (const [key, e] of this.breakers) if (e.store === store) this.breakers.delete(key);
    this.active.delete(store);
  }
}

export const instanceHealth = new InstanceHealth();

export interface FailoverOptions {
  store: string;
  settings: BreakerSettings;
  health?: InstanceHealth;
  onFailover?: (move: FailoverMove) => void;
}

/** Calls at the primary, or (reads) at the first available secondary. */
export class InstanceFailover {
  private readonly health: InstanceHealth;
  private lastServed: Instance;

  constructor(
    readonly instances: Instance[],
    private readonly options: FailoverOptions,
  ) {
    if (instances.length === 0) throw new Error('InstanceFailover needs an instance');
    this.health = options.health ?? instanceHealth;
    this.lastServed = this.health.activeInstance(options.store) ?? this.primary;
  }

  get primary(): Instance {
    return this.instances[0] as Instance;
  }

  /** Undefined without secondaries; else the instance that answered last. */
  servedRegion(): ServedRegion | undefined {
    if (this.instances.length === 1) return undefined;
    const served = this.lastServed;
    const shared = this.instances.filter((i) => i.region === served.region).length > 1;
    return {
      region: served.region,
      ...(shared ? { endpoint: hostOf(served.url) } : {}),
      primary: served.url === this.primary.url,
    };
  }

  /**
   * `call` at the primary, then each secondary whose circuit is closed (reads
   * only: `primaryOnly` stops at the primary). Only IbmUnavailableError moves
   * on; a 401, 403 or 404 is the answer. With every circuit open they are
   * tried in order anyway. An aborted signal stops at once.
   */
  async run<T>(call: (instance: Instance) => Promise<T>, signal?: AbortSignal, primaryOnly = false): Promise<T> {
    const what = `${this.options.store} (${PROVIDER})`;
    const attempt = async (i: Instance, guarded: boolean): Promise<T> => {
      throwIfAborted(signal, what);
      const once = () => raceAbort(call(i), signal, what);
      return guarded ? this.health.breaker(this.options.store, i, this.options.settings).execute(once) : once();
    };
    if (this.instances.length === 1) return this.served(this.primary, await attempt(this.primary, false));
    if (primaryOnly) {
      try {
        return this.served(this.primary, await attempt(this.primary, true));
      } catch (err) {
        if (err instanceof BrokenCircuitError || err instanceof IbmUnavailableError)
          throw new IbmUnavailableError(
            `${what}: writes go only to the primary instance ${hostOf(this.primary.url)} (${this.primary.region}), which is unavailable; the write waits for it`,
          );
        throw err;
      }
    }
    const failed: unknown[] = [];
    const skipped: Instance[] = [];
    for (const i of this.instances) {
      try {
        return this.served(i, await attempt(i, true));
      } catch (err) {
        if (err instanceof BrokenCircuitError) {
          skipped.push(i);
          continue;
        }
        if (!(err instanceof IbmUnavailableError)) throw err;
        failed.push(err);
      }
    }
    if (failed.length === 0) {
      for (const i of skipped) {
        try {
          return this.served(i, await attempt(i, false));
        } catch (err) {
          if (!(err instanceof IbmUnavailableError)) throw err;
          failed.push(err);
        }
      }
    }
    const last = failed[failed.length - 1];
    if (failed.length > 1 && last instanceof ProviderError)
      throw new IbmUnavailableError(`${last.message} (every instance of the store was tried)`, last.retryAfterMs, last);
    throw last;
  }

  private served<T>(i: Instance, value: T): T {
    this.lastServed = i;
    if (this.instances.length > 1) {
      const move = this.health.served(this.options.store, i, this.primary);
      if (move) {
        try {
          this.options.onFailover?.(move);
        } catch {
          // Reporting must not fail a served call.
        }
      }
    }
    return value;
  }
}
