// Gauges computed from the caches every few seconds (not on every change, which
// at tens of thousands of objects would cost more than the syncs): Ready counts,
// store Ready counts, freshness, rotations due, queue depth.
import type { Metrics } from '../observability/metrics.js';
import type { ClusterCache } from './caches.js';
import { getCondition } from './conditions.js';
import { rotationDueInMs } from './rotation.js';

export interface GaugeSources {
  caches: ClusterCache;
  metrics: Metrics;
  /** When each refreshing ManagedSecret last read its values, and its interval. */
  checks(): Iterable<{ lastCheck: number; intervalMs: number }>;
  queueDepth(): number;
}

export function updateGauges(src: GaugeSources, now = Date.now()): void {
  const { caches, metrics } = src;
  const counts: Record<string, number> = { True: 0, False: 0, Unknown: 0 };
  const soonestRotation = new Map<string, number>();
  for (const ms of caches.managedSecrets.list()) {
    const status = getCondition(ms.status?.conditions, 'Ready')?.status ?? 'Unknown';
    counts[status] = (counts[status] ?? 0) + 1;
    const due = rotationDueInMs(ms, now);
    if (due === undefined) continue;
    const ns = ms.metadata.namespace ?? '';
    soonestRotation.set(ns, Math.min(soonestRotation.get(ns) ?? Infinity, due));
  }
  for (const [ready, n] of Object.entries(counts)) metrics.managedSecrets.set({ ready }, n);

  for (const [kind, informer] of [
    ['SecretStore', caches.secretStores],
    ['ClusterSecretStore', caches.clusterStores],
  ] as const) {
    const c: Record<string, number> = { True: 0, False: 0, Unknown: 0 };
    for (const s of informer.list()) {
      const st = getCondition(s.status?.conditions, 'Ready')?.status ?? 'Unknown';
      c[st] = (c[st] ?? 0) + 1;
    }
    for (const [ready, n] of Object.entries(c)) metrics.storesReady.set({ kind, ready }, n);
  }

  let oldest = 0;
  let overdue = 0;
  for (const { lastCheck, intervalMs } of src.checks()) {
    if (intervalMs <= 0) continue;
    oldest = Math.max(oldest, now - lastCheck);
    if (now - lastCheck > 2 * intervalMs) overdue += 1;
  }
  metrics.lastCheck.set(oldest / 1000);
  metrics.overdue.set(overdue);

  metrics.rotationDue.reset();
  for (const [namespace, ms] of soonestRotation) metrics.rotationDue.set({ namespace }, ms / 1000);
  metrics.queueDepth.set(src.queueDepth());
}
