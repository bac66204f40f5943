// What the AWS providers keep per store across client rebuilds (the request
// budget, the failover breakers) behind the provider contract's lifecycle
// hooks: `forgetStore` when a store is deleted or changed, `stats` for
// /metrics. The registries are process-wide and shared by the three AWS
// providers (and by `decrypt.kms` of any store), so each provider reports only
// the stores it connected: metrics summed over providers count a store once.
import type { AnyStore } from '../../api/types.js';
import { storeLabel, type ProviderStats } from '../provider.js';
import { storeBudgets } from '../budget.js';
import { regionHealth } from './failover.js';

export interface StoreLifecycle {
  /** Remembers that this provider serves the store (called by connect). */
  track(store: AnyStore): void;
  forgetStore(store: AnyStore): void;
  stats(): ProviderStats;
}

/** The lifecycle hooks of one provider. */
export function storeLifecycle(): StoreLifecycle {
  const stores = new Set<string>();
  return {
    track(store) {
      stores.add(storeLabel(store));
    },
    forgetStore(store) {
      const label = storeLabel(store);
      stores.delete(label);
      storeBudgets.forget(store);
      regionHealth.forget(label);
    },
    stats() {
      return {
        budgets: storeBudgets
          .all()
          .filter((b) => stores.has(b.store))
          .map((b) => ({ store: b.store, waiting: b.waiting, used: b.used })),
        circuits: regionHealth.stats().filter((c) => stores.has(c.store)),
      };
    },
  };
}
