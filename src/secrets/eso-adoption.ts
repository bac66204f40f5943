// Taking over Secrets that External Secrets Operator (ESO) wrote. During a
// migration a converted ManagedSecret targets a Secret ESO still writes: until
// the user says so (the annotation secretsync.io/adopt-from-eso on the
// ManagedSecret), secretsync only compares and never writes to it, so two
// operators never fight over one Secret. Told to, it takes the Secret over in
// one write: ESO's owner reference, labels and annotations out, its own in.
import type { ManagedSecret } from '../api/types.js';
import type { OwnerReference } from '../kube/client.js';

/** Set to "true" on a ManagedSecret: take over the ESO-written Secret it targets (one write). */
export const ANNOTATION_ADOPT_FROM_ESO = 'secretsync.io/adopt-from-eso';

/** ESO's group, and the prefix of the labels and annotations it keeps on the Secrets it writes. */
const ESO_GROUP = 'external-secrets.io';
const ESO_RECONCILE_PREFIX = 'reconcile.external-secrets.io/';
/** ESO's label on every Secret it writes (apis/externalsecrets/v1 LabelManaged). */
export const ESO_LABEL_MANAGED = `${ESO_RECONCILE_PREFIX}managed`;

interface SecretMeta {
  labels?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/** An owner reference to an ESO ExternalSecret (any version of external-secrets.io). */
export function isEsoOwnerReference(ref: OwnerReference): boolean {
  return ref.kind === 'ExternalSecret' && ref.apiVersion.split('/')[0] === ESO_GROUP;
}

/**
 * The ExternalSecret that wrote this Secret, as "ExternalSecret <name>", or
 * "External Secrets Operator" for one ESO wrote without an owner (creationPolicy
 * Orphan); undefined when ESO did not write it.
 */
export function esoWriterOf(meta: SecretMeta): string | undefined {
  const owner = (meta.ownerReferences ?? []).find(isEsoOwnerReference);
  if (owner) return `ExternalSecret ${owner.name}`;
  // ESO's label on a Secret another controller owns: ESO merged into it (creationPolicy Merge); not ESO's to give.
  if ((meta.ownerReferences ?? []).some((r) => r.controller === true)) return undefined;
  return meta.labels?.[ESO_LABEL_MANAGED] === 'true' ? 'External Secrets Operator' : undefined;
}

/** Whether the ManagedSecret asks to take over an ESO-written target. */
export function adoptsFromEso(ms: ManagedSecret): boolean {
  return ms.metadata.annotations?.[ANNOTATION_ADOPT_FROM_ESO]?.trim().toLowerCase() === 'true';
}

/** A Secret's labels or annotations without ESO's bookkeeping (reconcile.external-secrets.io/*). */
export function withoutEsoKeys(map: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(map ?? {}).filter(([k]) => !k.startsWith(ESO_RECONCILE_PREFIX)));
}
