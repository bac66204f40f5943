// What a store's status says about regional failover (AWS `failover`): the
// Failover condition, and the Event for a move since the last status. Pure, so
// the manager only writes and emits what this returns. A served place is a
// region, plus the endpoint host when the store lists several endpoints in
// that region (`status.activeRegion`, `status.activeEndpoint`).
import { Reasons, type AnyStore, type Condition } from '../api/types.js';
import type { ServedRegion } from '../providers/provider.js';

export interface RegionMove {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** Where from and to, as in messages: `us-east-1`, or `us-east-1 (host)` for one of several endpoints there. */
  from: string;
  to: string;
}

export interface FailoverStatus {
  condition: Omit<Condition, 'lastTransitionTime'>;
  /** `status.activeRegion` or `status.activeEndpoint` differs from the served place. */
  changed: boolean;
  /** Set when the served place moved since the last recorded one (none on the first record). */
  move?: RegionMove;
}

/** A served place in messages: the region, with the endpoint host when the region alone is ambiguous. */
export function describePlace(region: string, endpoint: string | undefined): string {
  return endpoint !== undefined ? `${region} (${endpoint})` : region;
}

export function failoverStatus(store: AnyStore, served: ServedRegion): FailoverStatus {
  const beforeRegion = store.status?.activeRegion;
  const beforeEndpoint = store.status?.activeEndpoint;
  const place = describePlace(served.region, served.endpoint);
  const observedGeneration = store.metadata.generation;
  // An endpoint-only failover stays in the primary's region: say "endpoint" then, not "region".
  const what = served.endpoint !== undefined ? 'endpoint' : 'region';
  const condition: Omit<Condition, 'lastTransitionTime'> = served.primary
    ? {
        type: 'Failover',
        status: 'False',
        reason: 'PrimaryRegion',
        message: `served by the primary ${what} ${place}`,
        observedGeneration,
      }
    : {
        type: 'Failover',
        status: 'True',
        reason: Reasons.FailedOver,
        message: `the primary is unavailable; served by failover ${what} ${place}`,
        observedGeneration,
      };
  const changed = beforeRegion !== served.region || beforeEndpoint !== served.endpoint;
  if (!changed || beforeRegion === undefined) return { condition, changed };
  const before = describePlace(beforeRegion, beforeEndpoint);
  const move: RegionMove = served.primary
    ? {
        type: 'Normal',
        reason: Reasons.FailedBack,
        message: `primary ${what} ${place} is used again (was ${before})`,
        from: before,
        to: place,
      }
    : {
        type: 'Warning',
        reason: Reasons.FailedOver,
        message: `failed over from ${before} to ${what} ${place}`,
        from: before,
        to: place,
      };
  return { condition, changed, move };
}

/** Whether a store's conditions carry a Failover condition (to remove once failover is gone). */
export function hasFailoverCondition(conditions: Condition[] | undefined): boolean {
  return (conditions ?? []).some((c) => c.type === 'Failover');
}
