// Installs the secretsync.io CRDs into a test cluster, once per cluster however
// many test files ask. The CRDs go as raw JSON through adminRequest: the typed
// ApiextensionsV1Api would drop their x-kubernetes-validations on the way.
import type { CustomResourceDefinition } from '../../src/api/crds.js';
import { crdListPath, crdObjects } from '../../src/api/install.js';
import { waitFor, type TestCluster } from '../../tools/testenv/index.js';
import { GiveUpError } from '../../tools/testenv/processes.js';

const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const READY_TIMEOUT_MS = 30_000;

interface CrdStatus {
  metadata?: { resourceVersion?: string };
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

const installed = new WeakMap<TestCluster, Promise<void>>();

function failure(what: string, res: { status: number; body: string }): Error {
  return new Error(`${what}: HTTP ${res.status}: ${res.body}`);
}

/**
 * Creates the CRD, or replaces the one already there (GET for its
 * resourceVersion, then PUT). After a replace that changes the schema the API
 * server may serve the old one for a moment; the suite's cluster is fresh, so
 * in practice the POST path is the one taken.
 */
async function apply(cluster: TestCluster, crd: CustomResourceDefinition): Promise<void> {
  const name = crd.metadata.name;
  const created = await cluster.adminRequest('POST', CRD_PATH, crd);
  if (created.status === 201) return;
  if (created.status !== 409) throw failure(`creating CRD ${name}`, created);
  // Someone else (another process sharing the cluster) may update it between GET and PUT: retry on conflict.
  await waitFor(
    `CRD ${name} to be replaced`,
    async () => {
      const current = await cluster.adminRequest('GET', `${CRD_PATH}/${name}`);
      if (current.status !== 200) throw failure(`reading CRD ${name}`, current);
      const resourceVersion = (JSON.parse(current.body) as CrdStatus).metadata?.resourceVersion;
      const body = { ...crd, metadata: { ...crd.metadata, resourceVersion } };
      const replaced = await cluster.adminRequest('PUT', `${CRD_PATH}/${name}`, body);
      if (replaced.status === 200) return true;
      if (replaced.status === 409) return undefined;
      throw failure(`replacing CRD ${name}`, replaced);
    },
    READY_TIMEOUT_MS,
  );
}

/** Waits until the CRD is Established and a list of its resource answers 200 (discovery may lag). */
async function waitServed(cluster: TestCluster, crd: CustomResourceDefinition): Promise<void> {
  const name = crd.metadata.name;
  await waitFor(
    `CRD ${name} to be Established`,
    async () => {
      const res = await cluster.adminRequest('GET', `${CRD_PATH}/${name}`);
      if (res.status !== 200) throw failure(`reading CRD ${name}`, res);
      const conditions = (JSON.parse(res.body) as CrdStatus).status?.conditions ?? [];
      const problem =
        conditions.find((c) => c.type === 'NonStructuralSchema' && c.status === 'True') ??
        conditions.find((c) => c.type === 'NamesAccepted' && c.status === 'False');
      if (problem) {
        throw new GiveUpError(
          `CRD ${name}: ${problem.type}=${problem.status}: ${problem.reason ?? ''} ${problem.message ?? ''}`,
        );
      }
      return conditions.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    },
    READY_TIMEOUT_MS,
  );
  await waitFor(
    `the API server to serve ${crdListPath(crd)}`,
    async () => ((await cluster.adminRequest('GET', crdListPath(crd))).status === 200 ? true : undefined),
    READY_TIMEOUT_MS,
  );
}

/**
 * Creates or replaces every CRD (or those `only` picks) and waits until they are served; no memo
 * (installCrds is the one to use; `only` is for a cluster of a test's own that must lack some).
 */
export async function applyCrds(
  cluster: TestCluster,
  only: (crd: CustomResourceDefinition) => boolean = () => true,
): Promise<void> {
  const crds = crdObjects().filter(only);
  for (const crd of crds) await apply(cluster, crd);
  await Promise.all(crds.map((crd) => waitServed(cluster, crd)));
}

/**
 * Makes sure the secretsync.io CRDs are installed, Established and served in
 * `cluster`. Idempotent: concurrent and repeated calls for one cluster share
 * one installation; a failed one is forgotten so that the next call retries.
 */
export function installCrds(cluster: TestCluster): Promise<void> {
  let pending = installed.get(cluster);
  if (!pending) {
    pending = applyCrds(cluster);
    installed.set(cluster, pending);
    pending.catch(() => installed.delete(cluster));
  }
  return pending;
}
