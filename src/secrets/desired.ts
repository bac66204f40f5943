import {
  ANNOTATION_DATA_HMAC,
  ANNOTATION_MANAGED_KEYS,
  ANNOTATION_MANAGED_SECRET,
  ANNOTATION_MERGE_FROM,
  API_VERSION,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  type ManagedSecret,
} from '../api/types.js';
import type { KubeObject, OwnerReference } from '../kube/client.js';
import {
  adoptsFromEso,
  ANNOTATION_ADOPT_FROM_ESO,
  esoWriterOf,
  isEsoOwnerReference,
  withoutEsoKeys,
} from './eso-adoption.js';
import { dataHmac } from './hmac.js';
import { LABEL_SHARD, shardLabelValue } from '../sharding/ownership.js';
import { secretTypeRefusal } from './validate.js';

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

/**
 * The type of the Secret a ManagedSecret writes (kubernetes.io/tls by default
 * with a certificate source). An empty type is Opaque, as
 * the API server stores it: compared as "", it would differ from the stored
 * Opaque on every pass and have the Secret deleted and created forever.
 */
export function targetType(ms: ManagedSecret): string {
  if (ms.spec.target?.type) return ms.spec.target.type;
  // A certificate source writes tls.crt and tls.key: the type that says so.
  return (ms.spec.dataFrom ?? []).some((d) => d.certificate) ? 'kubernetes.io/tls' : 'Opaque';
}

/**
 * The Secret a ManagedSecret should have. `shard` (sharded mode only) is the
 * ManagedSecret's shard, copied onto the Secret as its shard label so that the
 * replica holding the shard caches it by label selection; left out when
 * sharding is off, so single-replica clusters see no change.
 */
export function buildDesired(
  ms: ManagedSecret,
  values: Record<string, string>,
  hmacKey: Buffer,
  shard?: number,
): DesiredSecret {
  const target = ms.spec.target ?? {};
  const type = targetType(ms);
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) setOwn(data, k, b64(v));
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
      ...(shard === undefined ? {} : { [LABEL_SHARD]: shardLabelValue(shard) }),
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

/** Sets an own key, even `__proto__` (a valid Secret key), which plain assignment would take for the prototype. */
function setOwn(obj: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The data of `secret` under `keys` only (the keys secretsync owns there). */
function pick(secret: SecretObject, keys: Iterable<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const value = secret.data && Object.hasOwn(secret.data, k) ? secret.data[k] : undefined;
    if (value !== undefined) setOwn(out, k, value);
  }
  return out;
}

/**
 * The keyed HMAC of the part of a Secret's data that secretsync owns: the keys
 * its managed-keys annotation lists. What status.syncedVersion is compared
 * with to notice drift. Keys others added are not part of it, so adding one
 * never looks like drift (and never starts a sync that would write).
 * Merge hashes with the ManagedSecret's type (the Secret's own type is not
 * ours); the other policies with the Secret's type, so a Secret re-created
 * with another type is drift.
 */
export function observedDataHmac(ms: ManagedSecret, secret: SecretObject, hmacKey: Buffer): string {
  const merge = (ms.spec.target?.creationPolicy ?? 'Owner') === 'Merge';
  return dataHmac(hmacKey, merge ? targetType(ms) : (secret.type ?? 'Opaque'), pick(secret, managedKeysOf(secret)));
}

const subsetEqual = (want: Record<string, string>, have: Record<string, string> | undefined) =>
  Object.entries(want).every(([k, v]) => have?.[k] === v);

/**
 * Why a write was refused. SecretConflict: the Secret belongs to someone else
 * (another ManagedSecret, or nobody under Owner/Orphan), or is immutable.
 * MergeNotAllowed: creationPolicy Merge into a Secret that has not consented
 * (no secretsync.io/merge-from annotation naming this ManagedSecret) or whose
 * type the cluster acts on.
 */
export type ConflictReason = 'SecretConflict' | 'MergeNotAllowed';

export type SecretPlan =
  /** `note`: why nothing is written although the Secret is not ours (an ESO-written Secret that matches). */
  | { action: 'none'; note?: string }
  | { action: 'create'; body: SecretObject }
  | { action: 'update'; body: SecretObject }
  | { action: 'recreate'; body: SecretObject }
  | { action: 'conflict'; reason: ConflictReason; message: string }
  | { action: 'missing'; message: string };

/**
 * Whether the Secret allows this ManagedSecret to merge into it: its
 * secretsync.io/merge-from annotation names the ManagedSecret (same namespace).
 * One name, not a list: one Secret takes the keys of one ManagedSecret.
 */
export function mergeConsentRefusal(ms: ManagedSecret, existing: SecretObject, ref: string): string | undefined {
  const name = ms.metadata.name;
  const consent = existing.metadata.annotations?.[ANNOTATION_MERGE_FROM]?.trim();
  const fix =
    `add the annotation ${ANNOTATION_MERGE_FROM}: ${name} to the Secret ` +
    `(kubectl annotate secret -n ${existing.metadata.namespace ?? ''} ${existing.metadata.name} ${ANNOTATION_MERGE_FROM}=${name} --overwrite)`;
  if (consent === undefined || consent === '')
    return `${ref} does not allow merging: creationPolicy Merge writes only into a Secret that consents; ${fix}`;
  if (consent !== name)
    return `${ref} allows merging only from ManagedSecret "${consent.slice(0, 253)}" (${ANNOTATION_MERGE_FROM}); to let ManagedSecret ${name} merge instead, ${fix}`;
  return undefined;
}

/**
 * Compares what should be with what is and says the one write that closes the
 * gap, or none. The HMAC is recomputed from the Secret's actual data, so a
 * hand edit is caught even when the recorded annotation still looks right.
 *
 * Only what secretsync owns is compared: the data under its keys (the keys it
 * writes now and those it wrote before, per the managed-keys annotation), its
 * labels and annotations, the type, immutable, and its ownerReference. What
 * others add (labels, annotations, finalizers, ownerReferences, data keys) is
 * never a reason to write, and is kept when secretsync writes for another
 * reason. So no pair of writers can loop: their addition does not make us
 * write, and our write does not remove it.
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
    // The Secret's owner decides who may write into it: without consent, a namespace could
    // overwrite any Secret it can name (another tool's credentials, a TLS key).
    const refusal = mergeConsentRefusal(ms, existing, ref);
    if (refusal) return { action: 'conflict', reason: 'MergeNotAllowed', message: refusal };
    const typeRefusal = secretTypeRefusal(existing.type ?? 'Opaque');
    if (typeRefusal)
      return { action: 'conflict', reason: 'MergeNotAllowed', message: `${ref}: ${typeRefusal}; not merging into it` };
    // Our bookkeeping annotations are single-valued: a Secret already written by another
    // ManagedSecret (merged or owned) would have the two fight over it, each deleting the other's keys.
    const writer = managedSecretOf(existing);
    if (writer !== undefined && writer !== ms.metadata.name) {
      return {
        action: 'conflict',
        reason: 'SecretConflict',
        message: `${ref} is already managed by ManagedSecret ${writer}; one Secret takes the keys of one ManagedSecret`,
      };
    }
    const { data, dataOk } = ourData(desired, existing, hmacKey, desired.type);
    const metaOk =
      subsetEqual(desired.labels, existing.metadata.labels) &&
      subsetEqual(desired.annotations, existing.metadata.annotations);
    if (dataOk && metaOk) return { action: 'none' };
    if (existing.immutable)
      return {
        action: 'conflict',
        reason: 'SecretConflict',
        message: `${ref} is immutable; creationPolicy Merge cannot change it`,
      };
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
  // A Secret External Secrets Operator writes (a migration in progress): compared, never written,
  // until the ManagedSecret asks to take it over; then it is written like one of ours, below.
  const eso = owner === undefined ? esoWriterOf(existing.metadata) : undefined;
  if (eso !== undefined && !adoptsFromEso(ms)) return observeEsoSecret(ms, desired, existing, hmacKey, ref, eso);
  if (owner !== ms.metadata.name && eso === undefined) {
    return {
      action: 'conflict',
      reason: 'SecretConflict',
      message: `${ref} exists and is not managed by this ManagedSecret${owner ? ` (it belongs to ManagedSecret ${owner})` : ''}; to write into it, use creationPolicy Merge and annotate the Secret with ${ANNOTATION_MERGE_FROM}: ${ms.metadata.name}`,
    };
  }
  // Keys others added stay (they are not ours to remove), and are not a reason to write.
  const { data, dataOk } = ourData(desired, existing, hmacKey, desired.type);
  const typeOk = (existing.type ?? 'Opaque') === desired.type;
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
  if (dataOk && typeOk && ownerOk && metaOk) return { action: 'none' };

  // Keep what others added (a reloader's annotations, a backup tool's finalizer, their owner
  // references); the data and our own owner reference are wholly ours.
  // Taking over from ESO: its owner reference, labels and annotations go; ours come.
  const othersOwners = (existing.metadata.ownerReferences ?? []).filter(
    (r) =>
      !(r.kind === 'ManagedSecret' && r.apiVersion === API_VERSION) && !(eso !== undefined && isEsoOwnerReference(r)),
  );
  const keptLabels = eso !== undefined ? withoutEsoKeys(existing.metadata.labels) : existing.metadata.labels;
  const keptAnnotations =
    eso !== undefined ? withoutEsoKeys(existing.metadata.annotations) : existing.metadata.annotations;
  const owners = desired.ownerReference ? [...othersOwners, desired.ownerReference] : othersOwners;
  const { ownerReferences: _drop, ...existingMeta } = existing.metadata;
  const merged: SecretObject = {
    ...body,
    data,
    metadata: {
      ...existingMeta,
      labels: { ...keptLabels, ...desired.labels },
      annotations: { ...keptAnnotations, ...desired.annotations },
      ...(owners.length > 0 ? { ownerReferences: owners } : {}),
      resourceVersion: existing.metadata.resourceVersion,
    },
  };
  // The type and an immutable Secret's data cannot be changed in place; an immutable Secret's metadata can
  // (taking over an immutable Secret ESO wrote with the same values keeps it, uid and all).
  const metadataOnly = dataOk && desired.immutable;
  if ((existing.immutable === true && !metadataOnly) || (existing.type ?? 'Opaque') !== desired.type) {
    const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...fresh } = merged.metadata;
    return { action: 'recreate', body: { ...body, data, metadata: fresh } };
  }
  return { action: 'update', body: merged };
}

/**
 * The plan for a Secret ESO writes and the ManagedSecret has not been told to
 * take over: nothing is written. Ready when the keys this ManagedSecret would
 * write hold exactly its values and the type matches (keys only ESO writes are
 * allowed, and named by count); otherwise a SecretConflict that says how the
 * two differ (which keys, never values) and how to take the Secret over.
 */
function observeEsoSecret(
  ms: ManagedSecret,
  desired: DesiredSecret,
  existing: SecretObject,
  hmacKey: Buffer,
  ref: string,
  eso: string,
): SecretPlan {
  const takeOver = `annotate the ManagedSecret with ${ANNOTATION_ADOPT_FROM_ESO}=true to take it over (kubectl annotate managedsecret -n ${desired.namespace} ${ms.metadata.name} ${ANNOTATION_ADOPT_FROM_ESO}=true)`;
  const existingType = existing.type ?? 'Opaque';
  const differing = Object.keys(desired.data).filter((k) => existing.data?.[k] !== desired.data[k]);
  const extra = Object.keys(existing.data ?? {}).filter((k) => !Object.hasOwn(desired.data, k));
  const { dataOk } = ourData(desired, existing, hmacKey, desired.type);
  if (dataOk && differing.length === 0 && existingType === desired.type) {
    const kept =
      extra.length > 0 ? `; ${extra.length} keys of it this ManagedSecret does not write stay as they are` : '';
    return {
      action: 'none',
      note: `${ref} is written by ${eso} and already holds these values; secretsync makes no write to it${kept}; ${takeOver}`,
    };
  }
  const why =
    existingType !== desired.type
      ? `its type is ${existingType}, not ${desired.type}`
      : `keys ${differing.slice(0, 20).join(', ')}${differing.length > 20 ? ', …' : ''} differ or are missing`;
  return {
    action: 'conflict',
    reason: 'SecretConflict',
    message: `${ref} is written by ${eso} and differs from what this ManagedSecret would write (${why}); secretsync does not write into it until told to: ${takeOver}`,
  };
}

/**
 * The data a write leaves in `existing`: keys others added kept, keys we wrote
 * before and no longer want removed, ours set. `dataOk` when our part already
 * matches: the HMAC of the existing data under our keys equals the desired one,
 * and no key we wrote before lingers.
 */
function ourData(
  desired: DesiredSecret,
  existing: SecretObject,
  hmacKey: Buffer,
  type: string,
): { data: Record<string, string>; dataOk: boolean } {
  const previous = managedKeysOf(existing);
  const data: Record<string, string> = { ...(existing.data ?? {}) };
  for (const k of previous) if (!Object.hasOwn(desired.data, k)) delete data[k];
  for (const [k, v] of Object.entries(desired.data)) setOwn(data, k, v);
  const dataOk =
    dataHmac(hmacKey, type, pick(existing, Object.keys(desired.data))) === desired.hmac &&
    previous.every((k) => Object.hasOwn(desired.data, k) || existing.data?.[k] === undefined);
  return { data, dataOk };
}
