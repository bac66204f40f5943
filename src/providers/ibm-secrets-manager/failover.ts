// A secondary Secrets Manager instance in another region: reads go to the
// primary, and to the store's `failover` instances in order while the
// primary's circuit is open; writes go only to the primary. The breakers, the
// instance that served last and the moves are the generic failover's
// (../failover.ts, shared with the AWS and Vault providers): one target per
// instance (its region, and its service URL as the endpoint), with IBM's rule
// for what counts as unavailable (IbmUnavailableError: network, timeouts, 5xx,
// throttling that outlasted the retries; never 401, 403 or 404).
import { BrokenCircuitError } from 'cockatiel';
import { ProviderError, type FailoverMove, type ServedRegion } from '../provider.js';
import { RegionalClients, endpointHost, regionHealth, type BreakerSettings, type RegionHealth } from '../failover.js';
import { IbmUnavailableError } from './http.js';

export { breakerSettings, type BreakerSettings } from '../failover.js';

export const PROVIDER = 'ibmSecretsManager';

/** One instance: its service URL and the region it is in (or, for a custom URL, its host). */
export interface Instance {
  url: string;
  region: string;
}

export function hostOf(url: string): string {
  return endpointHost(url);
}

/** The breakers of IBM stores: the process-wide registry every provider with failover uses. */
export const instanceHealth: RegionHealth = regionHealth;

export interface FailoverOptions {
  store: string;
  settings: BreakerSettings;
  health?: RegionHealth;
  onFailover?: (move: FailoverMove) => void;
}

/** Calls at the primary, or (reads) at the first available secondary. */
export class InstanceFailover {
  private readonly targets: RegionalClients<Instance>;

  constructor(
    readonly instances: Instance[],
    private readonly options: FailoverOptions,
  ) {
    if (instances.length === 0) throw new Error('InstanceFailover needs an instance');
    this.targets = new RegionalClients(
      instances.map((i) => ({ target: { region: i.region, endpoint: i.url }, client: i })),
      {
        store: options.store,
        provider: PROVIDER,
        settings: options.settings,
        health: options.health ?? instanceHealth,
        isAvailable: (err) => err instanceof IbmUnavailableError,
        ...(options.onFailover ? { onFailover: options.onFailover } : {}),
        onExhausted: (last) =>
          last instanceof ProviderError
            ? new IbmUnavailableError(
                `${last.message} (every instance of the store was tried)`,
                last.retryAfterMs,
                last,
              )
            : last,
      },
    );
  }

  get primary(): Instance {
    return this.instances[0] as Instance;
  }

  /** Undefined without secondaries; else the instance that answered last. */
  servedRegion(): ServedRegion | undefined {
    return this.targets.servedRegion();
  }

  /**
   * `call` at the primary, then each secondary whose circuit is closed (reads
   * only: `primaryOnly` stops at the primary). Only IbmUnavailableError moves
   * on; a 401, 403 or 404 is the answer. With every circuit open they are
   * tried in order anyway. An aborted signal stops at once.
   */
  async run<T>(call: (instance: Instance) => Promise<T>, signal?: AbortSignal, primaryOnly = false): Promise<T> {
    if (!primaryOnly || this.instances.length === 1) return this.targets.run((i) => call(i), undefined, signal);
    try {
      return await this.targets.runAtPrimary((i) => call(i), signal);
    } catch (err) {
      if (err instanceof BrokenCircuitError || err instanceof IbmUnavailableError)
        throw new IbmUnavailableError(
          `${this.options.store} (${PROVIDER}): writes go only to the primary instance ${hostOf(this.primary.url)} (${this.primary.region}), which is unavailable; the write waits for it`,
        );
      throw err;
    }
  }
}
