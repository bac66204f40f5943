// What a ManagedSecret may ask the operator to write. Whoever can create a
// ManagedSecret borrows the operator's right to write Secrets in that
// namespace, and some Secrets make the cluster act: a
// kubernetes.io/service-account-token Secret naming a ServiceAccount gets a
// token for it minted into its data by the token controller; a
// bootstrap.kubernetes.io/token Secret in kube-system lets a node join; keys
// under kubernetes.io/ and k8s.io/ are read by the cluster's own controllers.
// So types and metadata keys in those domains are refused, except the types
// that only describe the data's shape and the descriptive app.kubernetes.io/
// labels; and secretsync.io/ keys are ours (they say which ManagedSecret owns a
// Secret and what it wrote), so a spec may not set them. The same rules are
// CEL rules in the CRD (src/api/schemas.ts); this check covers objects admitted
// before those rules existed, and the merge target's type.
import { boundedText, SpecError } from '../api/errors.js';
import { ALLOWED_KUBERNETES_SECRET_TYPES, type ManagedSecret } from '../api/types.js';

export { ALLOWED_KUBERNETES_SECRET_TYPES };

/** The domains the cluster's own components own: kubernetes.io, k8s.io and their subdomains. */
const CLUSTER_DOMAINS = ['kubernetes.io', 'k8s.io'];
/** The one cluster-owned prefix allowed on a Secret we write: the recommended labels, which only describe. */
const ALLOWED_CLUSTER_PREFIX = 'app.kubernetes.io';
/** Our own bookkeeping domain. */
const OUR_DOMAIN = 'secretsync.io';

/** The DNS prefix of a key (`domain/name`), lower-cased; undefined for a key without one. */
function domainOf(key: string): string | undefined {
  const slash = key.indexOf('/');
  return slash < 0 ? undefined : key.slice(0, slash).toLowerCase();
}

const inDomain = (domain: string, parent: string) => domain === parent || domain.endsWith(`.${parent}`);

/** Why a target Secret type is refused, or undefined when it is allowed. `Opaque` and custom types are. */
export function secretTypeRefusal(type: string): string | undefined {
  if (type === '' || type === 'Opaque' || ALLOWED_KUBERNETES_SECRET_TYPES.includes(type)) return undefined;
  const domain = domainOf(type);
  if (domain !== undefined && CLUSTER_DOMAINS.some((d) => inDomain(domain, d)))
    return (
      `Secret type "${boundedText(type, 120)}" is refused: the cluster acts on Secrets of kubernetes.io and k8s.io types ` +
      `(such as kubernetes.io/service-account-token); use Opaque, ${ALLOWED_KUBERNETES_SECRET_TYPES.join(', ')}, ` +
      'or a type of your own domain'
    );
  return undefined;
}

/** Why a label or annotation key is refused on a Secret we write, or undefined when it is allowed. */
export function metadataKeyRefusal(key: string): string | undefined {
  const domain = domainOf(key);
  if (domain === undefined) return undefined;
  if (inDomain(domain, OUR_DOMAIN))
    return `"${boundedText(key, 120)}" is refused: keys under ${OUR_DOMAIN}/ are secretsync's own bookkeeping`;
  if (domain !== ALLOWED_CLUSTER_PREFIX && CLUSTER_DOMAINS.some((d) => inDomain(domain, d)))
    return (
      `"${boundedText(key, 120)}" is refused: the cluster's controllers act on keys under kubernetes.io/ and k8s.io/ ` +
      `(such as kubernetes.io/service-account.name); only ${ALLOWED_CLUSTER_PREFIX}/ keys are allowed there`
    );
  return undefined;
}

/**
 * Refuses (SpecError, InvalidSpec) a target type and target labels and
 * annotations that would make the cluster act on the Secret or forge our
 * bookkeeping. Names the field and the key; values are not looked at.
 */
export function validateTarget(ms: ManagedSecret): void {
  const target = ms.spec.target;
  if (!target) return;
  const typeRefusal = target.type === undefined ? undefined : secretTypeRefusal(target.type);
  if (typeRefusal) throw new SpecError(`target.type: ${typeRefusal}`);
  for (const field of ['labels', 'annotations'] as const) {
    // Sorted: the same key is named whatever the map's order.
    for (const key of Object.keys(target[field] ?? {}).sort()) {
      const refusal = metadataKeyRefusal(key);
      if (refusal) throw new SpecError(`target.${field}: ${refusal}`);
    }
  }
}
