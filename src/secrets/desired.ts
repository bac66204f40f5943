import {
  ANNOTATION_DATA_HMAC,
  ANNOTATION_MANAGED_KEYS,
  ANNOTATION_MANAGED_SECRET,
  API_VERSION,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  type ManagedSecret,
} from '../api/types.js';
import type { KubeObject, OwnerReference } from '../kube/client.js';
import { dataHmac } from './hmac.js';

/** Our label on every Secret we write, so our informer can watch only those. */
export const LABEL_MANAGED = 'secretsync.io/managed';

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
  immutable?: boolean;
}

/** Annotations and labels that belong to a GitOps tool's bookkeeping, never copied onto a Secret we write. */
const GITOPS_TRACKING = [
  /^argocd\.argoproj\.io\//,
  /^app\.kubernetes\.io\/instance$/,
  /^kubectl\.kubernetes\.io\/last-applied-configuration$/,
];
const isTracking = (key: string) => GITOPS_TRACKING.some((re) => re.test(key));
const withoutTracking = (m: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(m ?? {}).filter(([k]) => !isTracking(k)));

export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export interface DesiredSecret {
  name: string;
  namespace: string;
  type: string;
  /** Base64 values, as the API wants them. */
  data: Record<string, string>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  immutable: boolean;
  ownerReference: OwnerReference | undefined;
  hmac: string;
}

export function targetName(ms: ManagedSecret): string {
  return ms.spec.target?.name ?? ms.metadata.name;
}

export function buildDesired(ms: ManagedSecret, values: Record<string, string>, hmacKey: Buffer): DesiredSecret {
  const target = ms.spec.target ?? {};
  const type = target.type ?? 'Opaque';
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) data[k] = b64(v);
  const hmac = dataHmac(hmacKey, type, data);
  const policy = target.creationPolicy ?? 'Owner';
  return {
    name: targetName(ms),
    namespace: ms.metadata.namespace ?? 'default',
    type,
    data,
    hmac,
    labels: {
      ...withoutTracking(target.labels),
      [LABEL_MANAGED]: 'true',
      ...(policy === 'Merge' ? {} : { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE }),
    },
    annotations: {
      ...withoutTracking(target.annotations),
      [ANNOTATION_MANAGED_SECRET]: ms.metadata.name,
      [ANNOTATION_DATA_HMAC]: hmac,
      [ANNOTATION_MANAGED_KEYS]: Object.keys(data).sort().join(','),
    },
    immutable: target.immutable === true,
    ownerReference:
      policy === 'Owner'
        ? {
            apiVersion: API_VERSION,
            kind: 'ManagedSecret',
            name: ms.metadata.name,
            uid: ms.metadata.uid ?? '',
            controller: true,
            blockOwnerDeletion: false,
          }
        : undefined,
  };
}

/** The keys a Secret says we wrote into it last time. */
export function managedKeysOf(secret: SecretObject | undefined): string[] {
  const list = secret?.metadata.annotations?.[ANNOTATION_MANAGED_KEYS];
  return list ? list.split(',').filter((k) => k.length > 0) : [];
}

/** Which ManagedSecret a Secret belongs to, if any (same namespace). */
export function managedSecretOf(secret: SecretObject): string | undefined {
  return secret.metadata.annotations?.[ANNOTATION_MANAGED_SECRET];
}

const subsetEqual = (want: Record<string, string>, have: Record<string, string> | undefined) =>
  Object.entries(want).every(([k, v]) => have?.[k] === v);

export type SecretPlan =
  | { action: 'none' }
  | { action: 'create'; body: SecretObject }
  | { action: 'update'; body: SecretObject }
  | { action: 'recreate'; body: SecretObject }
  | { action: 'conflict'; message: string }
  | { action: 'missing'; message: string };

/**
 * Compares what should be with what is and says the one write that closes the
 * gap, or none. The HMAC is recomputed from the Secret's actual data, so a
 * hand edit is caught even when the recorded annotation still looks right.
 */
export function planSecretWrite(
  ms: ManagedSecret,
  desired: DesiredSecret,
  existing: SecretObject | undefined,
  hmacKey: Buffer,
): SecretPlan {
  const policy = ms.spec.target?.creationPolicy ?? 'Owner';
  if (policy === 'None') return { action: 'none' };
  const ref = `Secret ${desired.namespace}/${desired.name}`;

  if (policy === 'Merge') {
    if (!existing)
      return {
        action: 'missing',
        message: `${ref} does not exist; creationPolicy Merge only writes into an existing Secret`,
      };
    // Our bookkeeping annotations are single-valued: a Secret already written by another
    // ManagedSecret (merged or owned) would have the two fight over it, each deleting the other's keys.
    const writer = managedSecretOf(existing);
    if (writer !== undefined && writer !== ms.metadata.name) {
      return {
        action: 'conflict',
        message: `${ref} is already managed by ManagedSecret ${writer}; one Secret takes the keys of one ManagedSecret`,
      };
    }
    const previous = managedKeysOf(existing);
    const data: Record<string, string> = { ...(existing.data ?? {}) };
    for (const k of previous) if (!(k in desired.data)) delete data[k];
    Object.assign(data, desired.data);
    const ours: Record<string, string> = {};
    for (const k of Object.keys(desired.data))
      if (existing.data?.[k] !== undefined) ours[k] = existing.data[k] as string;
    const dataOk =
      dataHmac(hmacKey, desired.type, ours) === desired.hmac &&
      previous.every((k) => k in desired.data || existing.data?.[k] === undefined);
    const metaOk =
      subsetEqual(desired.labels, existing.metadata.labels) &&
      subsetEqual(desired.annotations, existing.metadata.annotations);
    if (dataOk && metaOk) return { action: 'none' };
    if (existing.immutable)
      return { action: 'conflict', message: `${ref} is immutable; creationPolicy Merge cannot change it` };
    return {
      action: 'update',
      body: {
        ...existing,
        data,
        metadata: {
          ...existing.metadata,
          labels: { ...existing.metadata.labels, ...desired.labels },
          annotations: { ...existing.metadata.annotations, ...desired.annotations },
        },
      },
    };
  }

  const body: SecretObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: desired.name,
      namespace: desired.namespace,
      labels: desired.labels,
      annotations: desired.annotations,
      ...(desired.ownerReference ? { ownerReferences: [desired.ownerReference] } : {}),
    },
    type: desired.type,
    data: desired.data,
    ...(desired.immutable ? { immutable: true } : {}),
  };
  if (!existing) return { action: 'create', body };

  const owner = managedSecretOf(existing);
  if (owner !== ms.metadata.name) {
    return {
      action: 'conflict',
      message: `${ref} exists and is not managed by this ManagedSecret${owner ? ` (it belongs to ManagedSecret ${owner})` : ''}; use creationPolicy Merge to write into it`,
    };
  }
  const dataOk = dataHmac(hmacKey, existing.type ?? 'Opaque', existing.data ?? {}) === desired.hmac;
  const ownerOk = desired.ownerReference
    ? (existing.metadata.ownerReferences ?? []).some(
        (r) => r.uid === desired.ownerReference?.uid && r.controller === true,
      )
    : !(existing.metadata.ownerReferences ?? []).some(
        (r) => r.kind === 'ManagedSecret' && r.apiVersion === API_VERSION,
      );
  const metaOk =
    subsetEqual(desired.labels, existing.metadata.labels) &&
    subsetEqual(desired.annotations, existing.metadata.annotations) &&
    (existing.immutable === true) === desired.immutable;
  if (dataOk && ownerOk && metaOk) return { action: 'none' };

  // Keep what others added (a reloader's annotations, a backup tool's finalizer, their owner
  // references); the data and our own owner reference are wholly ours.
  const othersOwners = (existing.metadata.ownerReferences ?? []).filter(
    (r) => !(r.kind === 'ManagedSecret' && r.apiVersion === API_VERSION),
  );
  const owners = desired.ownerReference ? [...othersOwners, desired.ownerReference] : othersOwners;
  const { ownerReferences: _drop, ...existingMeta } = existing.metadata;
  const merged: SecretObject = {
    ...body,
    metadata: {
      ...existingMeta,
      labels: { ...existing.metadata.labels, ...desired.labels },
      annotations: { ...existing.metadata.annotations, ...desired.annotations },
      ...(owners.length > 0 ? { ownerReferences: owners } : {}),
      resourceVersion: existing.metadata.resourceVersion,
    },
  };
  // type and immutable Secrets cannot be changed in place.
  if (existing.immutable === true || (existing.type ?? 'Opaque') !== desired.type) {
    const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...fresh } = merged.metadata;
    return { action: 'recreate', body: { ...body, metadata: fresh } };
  }
  return { action: 'update', body: merged };
}
