// The CRDs as objects to send to an API server, for tests and the demo.
// Send them as raw JSON (e.g. `TestCluster.adminRequest`, or a plain HTTP
// request): client-node's typed models silently drop x-kubernetes-validations
// and other fields they do not know.
import { buildCrds, type CustomResourceDefinition } from './crds.js';
import { VERSION } from './types.js';

/** Fresh copies of the CRDs, safe to modify. */
export function crdObjects(): CustomResourceDefinition[] {
  return buildCrds();
}

/** Where a CRD's objects are listed once it is served: `/apis/secretsync.io/v1alpha1/<plural>`. */
export function crdListPath(crd: CustomResourceDefinition): string {
  return `/apis/${crd.spec.group}/${crd.spec.versions[0]?.name ?? VERSION}/${crd.spec.names.plural}`;
}
