// Pure parts of replication: which primary objects a ReplicationTarget selects,
// what their DR copies look like (overrides applied, server-owned metadata
// stripped, our labels and annotations added), and which Secrets they reference.
import { createHash } from 'node:crypto';
import {
  ANNOTATION_REPLICATION_HASH,
  ANNOTATION_ROTATE_NOW,
  ANNOTATION_SOURCE_CLUSTER,
  ANNOTATION_SOURCE_GENERATION,
  ANNOTATION_SOURCE_UID,
  API_VERSION,
  LABEL_REPLICATED_BY,
  LABEL_SOURCE_CLUSTER,
  type AwsOverrides,
  type ProviderSpec,
  type ReplicatedNamespacedObjects,
  type ReplicationTarget,
} from '../api/types.js';
import { selectorMatches } from '../controller/selectors.js';
import type { KubeObject } from '../kube/client.js';

export type ReplicatedKind = 'ClusterSecretStore' | 'SecretStore' | 'ManagedSecret' | 'Secret';

export const PLURALS: Record<ReplicatedKind, string> = {
  ClusterSecretStore: 'clustersecretstores',
  SecretStore: 'secretstores',
  ManagedSecret: 'managedsecrets',
  Secret: 'secrets',
};

/** The field manager of every write replication makes in the DR cluster. */
export const FIELD_MANAGER = 'secretsync-replication';

/**
 * Annotations never copied: client-side bookkeeping of the primary, and the
 * request to rotate now (rotation is the primary's job, see desiredCopy).
 */
const DROPPED_ANNOTATIONS = ['kubectl.kubernetes.io/last-applied-configuration', ANNOTATION_ROTATE_NOW];

export interface DesiredObject {
  kind: ReplicatedKind;
  namespace?: string;
  name: string;
  /** The apply body (server-side apply, our field manager). */
  body: KubeObject;
  /** The body's hash for objects without secret data; Secrets are always applied. */
  hash?: string;
}

export const objectRef = (kind: ReplicatedKind, namespace: string | undefined, name: string): string =>
  `${kind}/${namespace ? `${namespace}/` : ''}${name}`;

/** The collection path of a kind in a namespace (or cluster-wide); `name` adds the object. */
export function resourcePath(kind: ReplicatedKind, namespace?: string, name?: string): string {
  const prefix = kind === 'Secret' ? '/api/v1' : `/apis/${API_VERSION}`;
  const ns = namespace ? `/namespaces/${namespace}` : '';
  return `${prefix}${ns}/${PLURALS[kind]}${name ? `/${name}` : ''}`;
}

/** The label selector (query form) that finds what one target of one source cluster wrote. */
export function replicatedSelector(targetName: string, clusterName: string): string {
  return `${LABEL_REPLICATED_BY}=${targetName},${LABEL_SOURCE_CLUSTER}=${clusterName}`;
}

/** Whether a namespaced object is selected by `stores` or `managedSecrets`. */
export function namespacedSelected(sel: ReplicatedNamespacedObjects | undefined, obj: KubeObject): boolean {
  if (!sel) return false;
  const namespaces = sel.namespaces ?? [];
  if (namespaces.length > 0 && !namespaces.includes(obj.metadata.namespace ?? '')) return false;
  return selectorMatches(sel.selector ?? {}, obj.metadata.labels ?? {});
}

export function clusterStoreSelected(target: ReplicationTarget, obj: KubeObject): boolean {
  const sel = target.spec.clusterStores;
  if (!sel) return false;
  return selectorMatches(sel.selector ?? {}, obj.metadata.labels ?? {});
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const AWS_BLOCKS = ['awsKms', 'awsSecretsManager', 'awsParameterStore'] as const;

/**
 * A copy of `provider` with the AWS overrides applied: every AWS block gets
 * each override field; a decrypt.kms gets the ones it sets itself (absent
 * fields inherit from the block, which is overridden already), except a local
 * store's decrypt.kms, which has no block to inherit from and gets them all.
 */
export function applyAwsOverrides(provider: ProviderSpec, overrides: AwsOverrides | undefined): ProviderSpec {
  const out = structuredClone(provider) as Json;
  if (!overrides) return out as ProviderSpec;
  const set = (block: Json, onlyPresent: boolean) => {
    for (const field of ['region', 'endpoint', 'roleArn'] as const) {
      const value = overrides[field];
      if (value === undefined) continue;
      if (onlyPresent && block[field] === undefined) continue;
      block[field] = value;
    }
  };
  // A failover entry without a region is in its block's region: when the override moves that region, the
  // entry keeps naming the place it named (its source region).
  const pinFailover = (block: Json, sourceRegion: unknown) => {
    if (overrides.region === undefined || typeof sourceRegion !== 'string' || !Array.isArray(block.failover)) return;
    for (const entry of block.failover) if (isObject(entry) && entry.region === undefined) entry.region = sourceRegion;
  };
  for (const name of AWS_BLOCKS) {
    const block = out[name];
    if (!isObject(block)) continue;
    const kms = isObject(block.decrypt) ? block.decrypt.kms : undefined;
    if (isObject(kms)) pinFailover(kms, kms.region ?? block.region);
    pinFailover(block, block.region);
    set(block, false);
    if (isObject(kms)) set(kms, true);
  }
  const local = out.local;
  if (isObject(local) && isObject(local.decrypt) && isObject(local.decrypt.kms)) {
    pinFailover(local.decrypt.kms, local.decrypt.kms.region);
    set(local.decrypt.kms, false);
  }
  return out as ProviderSpec;
}

export interface SecretReference {
  namespace: string;
  name: string;
}

/** Secrets a store reads: master keys and AWS credentials, in the store's namespace unless the ref names one. */
export function credentialSecretsOf(store: KubeObject): SecretReference[] {
  const storeNs = store.metadata.namespace;
  const provider = (store.spec as { provider?: Json } | undefined)?.provider ?? {};
  const refs: SecretReference[] = [];
  const add = (ref: unknown) => {
    if (!isObject(ref) || typeof ref.name !== 'string') return;
    const namespace = typeof ref.namespace === 'string' ? ref.namespace : storeNs;
    if (!namespace) return;
    if (!refs.some((r) => r.namespace === namespace && r.name === ref.name)) refs.push({ namespace, name: ref.name });
  };
  const addAuth = (auth: unknown) => {
    if (!isObject(auth) || !isObject(auth.secretRef)) return;
    for (const k of ['accessKeyIdSecretRef', 'secretAccessKeySecretRef', 'sessionTokenSecretRef'])
      add(auth.secretRef[k]);
  };
  for (const block of Object.values(provider)) {
    if (!isObject(block)) continue;
    add(block.masterKeySecretRef);
    addAuth(block.auth);
    if (isObject(block.decrypt) && isObject(block.decrypt.kms)) addAuth(block.decrypt.kms.auth);
  }
  return refs;
}

const hashOf = (value: unknown): string =>
  createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);

export interface CopyContext {
  targetName: string;
  clusterName: string;
  overrides?: AwsOverrides;
}

function copyMetadata(source: KubeObject, ctx: CopyContext): KubeObject['metadata'] {
  const annotations: Record<string, string> = { ...(source.metadata.annotations ?? {}) };
  for (const a of DROPPED_ANNOTATIONS) delete annotations[a];
  annotations[ANNOTATION_SOURCE_CLUSTER] = ctx.clusterName;
  annotations[ANNOTATION_SOURCE_UID] = source.metadata.uid ?? '';
  annotations[ANNOTATION_SOURCE_GENERATION] = String(source.metadata.generation ?? 0);
  return {
    name: source.metadata.name,
    ...(source.metadata.namespace ? { namespace: source.metadata.namespace } : {}),
    labels: {
      ...(source.metadata.labels ?? {}),
      [LABEL_REPLICATED_BY]: ctx.targetName,
      [LABEL_SOURCE_CLUSTER]: ctx.clusterName,
    },
    annotations,
  };
}

/**
 * The DR copy of a store or ManagedSecret: spec (overridden for stores; without
 * rotation for ManagedSecrets) and cleaned metadata; never status.
 */
export function desiredCopy(
  kind: Exclude<ReplicatedKind, 'Secret'>,
  source: KubeObject,
  ctx: CopyContext,
): DesiredObject {
  let spec = structuredClone(source.spec) as Json;
  // Rotation writes new values to the backend: only the primary rotates. A DR copy that rotated too would
  // fight the primary (or fail on a read-only replica secret); after a failover, rotation comes back with
  // the promoted cluster's own ManagedSecrets.
  if (kind === 'ManagedSecret') delete spec.rotation;
  if (kind !== 'ManagedSecret' && isObject(spec.provider)) {
    spec = { ...spec, provider: applyAwsOverrides(spec.provider as ProviderSpec, ctx.overrides) };
  }
  const metadata = copyMetadata(source, ctx);
  const hash = hashOf({ kind, metadata, spec });
  (metadata.annotations as Record<string, string>)[ANNOTATION_REPLICATION_HASH] = hash;
  return {
    kind,
    namespace: source.metadata.namespace,
    name: source.metadata.name,
    body: { apiVersion: API_VERSION, kind, metadata, spec },
    hash,
  };
}

/** The DR copy of a credential Secret: type and data, no hash (its data is secret). */
export function desiredSecretCopy(source: KubeObject, ctx: CopyContext): DesiredObject {
  return {
    kind: 'Secret',
    namespace: source.metadata.namespace,
    name: source.metadata.name,
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: copyMetadata(source, ctx),
      type: source.type ?? 'Opaque',
      data: source.data ?? {},
    },
  };
}
