// Gauges computed from the caches every few seconds (not on every change, which
// at tens of thousands of objects would cost more than the syncs): Ready counts,
// not-Ready counts by reason, store Ready counts, freshness, rotations due, queue depth.
// The pass walks every ManagedSecret, so it goes in slices with a turn of the
// event loop between them: at 50,000 it took about 135 ms in one piece every
// 5 s, and a change arriving meanwhile waited for it (the p99 of the scale
// benchmark's change latency).
import { setImmediate as nextTurn } from 'node:timers/promises';
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

/**
 * Distinct label values the not-Ready gauge uses (Other and NoCondition
 * included) before new reasons count as Other; a status is written by the
 * operator, but whoever may patch the status subresource could write any
 * reason, and a label must stay a bounded set.
 */
const MAX_NOT_READY_REASONS = 32;
const REASON_SHAPE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** The label for a not-Ready ManagedSecret's reason: its own when well-formed and the set is not full. */
function notReadyReason(reason: string | undefined, seen: Map<string, number>): string {
  if (reason === undefined || reason === '') return 'NoCondition';
  if (!REASON_SHAPE.test(reason)) return 'Other';
  return seen.has(reason) || seen.size < MAX_NOT_READY_REASONS ? reason : 'Other';
}

/** ManagedSecrets (and freshness records) looked at between two turns of the event loop. */
export const GAUGE_SLICE = 2_000;

export async function updateGauges(src: GaugeSources, now = Date.now(), slice = GAUGE_SLICE): Promise<void> {
  const { caches, metrics } = src;
  const counts: Record<string, number> = { True: 0, False: 0, Unknown: 0 };
  const notReady = new Map<string, number>();
  const soonestRotation = new Map<string, number>();
  let looked = 0;
  for (const ms of caches.managedSecrets.list()) {
    if (++looked % slice === 0) await nextTurn();
    const ready = getCondition(ms.status?.conditions, 'Ready');
    const status = ready?.status ?? 'Unknown';
    counts[status] = (counts[status] ?? 0) + 1;
    if (status !== 'True') {
      const reason = notReadyReason(ready?.reason, notReady);
      notReady.set(reason, (notReady.get(reason) ?? 0) + 1);
    }
    const due = rotationDueInMs(ms, now);
    if (due === undefined) continue;
    const ns = ms.metadata.namespace ?? '';
    soonestRotation.set(ns, Math.min(soonestRotation.get(ns) ?? Infinity, due));
  }
  for (const [ready, n] of Object.entries(counts)) metrics.managedSecrets.set({ ready }, n);
  // Reset first: a reason no ManagedSecret has any more must not linger at its last count.
  metrics.managedSecretsNotReady.reset();
  for (const [reason, n] of notReady) metrics.managedSecretsNotReady.set({ reason }, n);

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
    if (++looked % slice === 0) await nextTurn();
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
