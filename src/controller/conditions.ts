import type { Condition } from '../api/types.js';

/**
 * Sets a condition, keeping lastTransitionTime when the status did not change
 * (Kubernetes API conventions), and reports whether anything changed at all.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date = new Date(),
): { conditions: Condition[]; changed: boolean } {
  const list = [...(conditions ?? [])];
  const idx = list.findIndex((c) => c.type === next.type);
  const old = idx >= 0 ? list[idx] : undefined;
  const lastTransitionTime =
    old && old.status === next.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const condition: Condition = { ...next, lastTransitionTime };
  const changed =
    !old ||
    old.status !== next.status ||
    old.reason !== next.reason ||
    old.message !== next.message ||
    old.observedGeneration !== next.observedGeneration;
  if (idx >= 0) list[idx] = condition;
  else list.push(condition);
  return { conditions: list, changed };
}

export function getCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
