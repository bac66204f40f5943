// The custom resources a backup holds, by group/version/resource, in the order
// a restore applies them (stores before the objects that name them).
import { API_VERSION } from '../api/types.js';
import type { ExportedObject } from './format.js';

export interface BackupKind {
  kind: 'ClusterSecretStore' | 'SecretStore' | 'ReplicationTarget' | 'ManagedSecret';
  plural: string;
  namespaced: boolean;
  /** Not every cluster has it (ReplicationTarget is newer): a 404 on list means "none here", not an error. */
  optional: boolean;
}

export const BACKUP_KINDS: readonly BackupKind[] = [
  { kind: 'ClusterSecretStore', plural: 'clustersecretstores', namespaced: false, optional: false },
  { kind: 'SecretStore', plural: 'secretstores', namespaced: true, optional: false },
  { kind: 'ReplicationTarget', plural: 'replicationtargets', namespaced: false, optional: true },
  { kind: 'ManagedSecret', plural: 'managedsecrets', namespaced: true, optional: false },
];

export function kindOf(kind: string): BackupKind | undefined {
  return BACKUP_KINDS.find((k) => k.kind === kind);
}

export function kindOrThrow(kind: BackupKind['kind']): BackupKind {
  const k = kindOf(kind);
  if (!k) throw new Error(`unknown kind ${kind}`);
  return k;
}

/** The collection path across all namespaces (list) or of one namespace. */
export function collectionPath(k: BackupKind, namespace?: string): string {
  return k.namespaced && namespace !== undefined
    ? `/apis/${API_VERSION}/namespaces/${namespace}/${k.plural}`
    : `/apis/${API_VERSION}/${k.plural}`;
}

export function objectPath(k: BackupKind, name: string, namespace?: string): string {
  return `${collectionPath(k, k.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
}

/** "SecretStore team-a/local" or "ClusterSecretStore shared". */
export function describeObject(kind: string, name: string, namespace?: string): string {
  return `${kind} ${namespace ? `${namespace}/` : ''}${name}`;
}

/** A Secret by namespace and name. */
export interface SecretRef {
  namespace: string;
  name: string;
}

/**
 * The credential Secrets an object reads, as namespace/name: the `…SecretRef`
 * fields of a store's spec (master keys, AWS credentials; a SecretStore's are in
 * its own namespace, a ClusterSecretStore's name theirs) and a
 * ReplicationTarget's kubeconfig Secret, which lives in the operator's
 * namespace (without `operatorNamespace` it is not known). Backups never hold
 * these; restore notes the missing ones. ManagedSecrets read no credentials.
 */
export function referencedSecrets(
  o: Pick<ExportedObject, 'kind' | 'metadata' | 'spec'>,
  operatorNamespace?: string,
): SecretRef[] {
  if (o.kind !== 'SecretStore' && o.kind !== 'ClusterSecretStore' && o.kind !== 'ReplicationTarget') return [];
  const found = new Map<string, SecretRef>();
  const walk = (v: unknown, key: string): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x, key);
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    const rec = v as Record<string, unknown>;
    if (key.endsWith('SecretRef') && typeof rec.name === 'string') {
      const ns =
        o.kind === 'SecretStore'
          ? o.metadata.namespace
          : o.kind === 'ReplicationTarget'
            ? operatorNamespace
            : typeof rec.namespace === 'string'
              ? rec.namespace
              : undefined;
      if (ns) found.set(`${ns}/${rec.name}`, { namespace: ns, name: rec.name });
      return;
    }
    for (const [k, x] of Object.entries(rec)) walk(x, k);
  };
  walk(o.spec, '');
  return [...found.values()];
}
