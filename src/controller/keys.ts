// Work-queue keys: one string per object to reconcile, which says which
// reconciler takes it and which tenant (namespace) it belongs to (see
// `namespaceTenant` in workqueue.ts), so the queue can share workers fairly
// without looking the object up.

export type QueueKind = 'ms' | 'ss' | 'css';

export const queueKey = {
  managedSecret: (namespace: string, name: string): string => `ms/${namespace}/${name}`,
  secretStore: (namespace: string, name: string): string => `ss/${namespace}/${name}`,
  clusterStore: (name: string): string => `css/${name}`,
};

export interface ParsedKey {
  kind: QueueKind;
  /** The informer cache key: `namespace/name`, or `name` for a ClusterSecretStore. */
  cacheKey: string;
}

export function parseQueueKey(key: string): ParsedKey {
  const slash = key.indexOf('/');
  return { kind: key.slice(0, slash) as QueueKind, cacheKey: key.slice(slash + 1) };
}
