// What a store's status says about regional failover (AWS `failover`): the
// Failover condition, and the Event for a move since the last status. Pure, so
// the manager only writes and emits what this returns.
import { Reasons, type AnyStore, type Condition } from '../api/types.js';
import type { ServedRegion } from '../providers/provider.js';

export interface RegionMove {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  from: string;
  to: string;
}

export interface FailoverStatus {
  condition: Omit<Condition, 'lastTransitionTime'>;
  /** `status.activeRegion` differs from the served region. */
  changed: boolean;
  /** Set when the region moved since the last recorded one (none on the first record). */
  move?: RegionMove;
}

export function failoverStatus(store: AnyStore, served: ServedRegion): FailoverStatus {
  const before = store.status?.activeRegion;
  const observedGeneration = store.metadata.generation;
  const condition: Omit<Condition, 'lastTransitionTime'> = served.primary
    ? {
        type: 'Failover',
        status: 'False',
        reason: 'PrimaryRegion',
        message: `served by the primary region ${served.region}`,
        observedGeneration,
      }
    : {
        type: 'Failover',
        status: 'True',
        reason: Reasons.FailedOver,
        message: `the primary region is unavailable; served by failover region ${served.region}`,
        observedGeneration,
      };
  const changed = before !== served.region;
  if (!changed || before === undefined) return { condition, changed };
  const move: RegionMove = served.primary
    ? {
        type: 'Normal',
        reason: Reasons.FailedBack,
        message: `primary region ${served.region} is used again (was ${before})`,
        from: before,
        to: served.region,
      }
    : {
        type: 'Warning',
        reason: Reasons.FailedOver,
        message: `failed over from ${before} to region ${served.region}`,
        from: before,
        to: served.region,
      };
  return { condition, changed, move };
}

/** Whether a store's conditions carry a Failover condition (to remove once failover is gone). */
export function hasFailoverCondition(conditions: Condition[] | undefined): boolean {
  return (conditions ?? []).some((c) => c.type === 'Failover');
}
