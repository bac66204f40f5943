import type { ClusterStoreCondition, LabelSelector } from '../api/types.js';

/** Standard Kubernetes label-selector semantics (all requirements must hold). */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case 'In':
        if (!has || !(req.values ?? []).includes(value ?? '')) return false;
        break;
      case 'NotIn':
        if (has && (req.values ?? []).includes(value ?? '')) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/**
 * Whether a namespace may use a ClusterSecretStore: no conditions means every
 * namespace; otherwise any one condition must match, by name or by selector.
 */
export function namespaceAllowed(
  conditions: ClusterStoreCondition[] | undefined,
  namespace: string,
  namespaceLabels: Record<string, string> | undefined,
): boolean {
  if (!conditions || conditions.length === 0) return true;
  return conditions.some(
    (c) =>
      (c.namespaces ?? []).includes(namespace) ||
      (c.namespaceSelector !== undefined &&
        namespaceLabels !== undefined &&
        selectorMatches(c.namespaceSelector, namespaceLabels)),
  );
}
