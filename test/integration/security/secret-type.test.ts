// Attack: a ManagedSecret that asks for a Secret the cluster acts on. A
// kubernetes.io/service-account-token Secret annotated with a ServiceAccount's
// name gets a token for that ServiceAccount minted into it by
// kube-controller-manager: whoever may create a ManagedSecret would borrow the
// operator's right to create Secrets to obtain any ServiceAccount's token (and
// the token controller's writes and ours then fight over the data). Likewise
// bootstrap.kubernetes.io/token. Such types and the kubernetes.io/ annotations
// are refused at admission by CEL; an object stored before those rules
// existed is refused by the controller (InvalidSpec), and no Secret is made.
import { expect } from 'chai';
import type { CustomResourceDefinition } from '../../../src/api/crds.js';
import { crdObjects } from '../../../src/api/install.js';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import { sleep, waitFor, type TestCluster } from '../../../tools/testenv/index.js';
import { applyCrds, installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createSecretStore,
  ensureNamespace,
  getSecret,
  startOperator,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';
import { admissionRefusal, eventsAbout, reconciled } from './input-fixtures.js';

const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const SA_TOKEN = 'kubernetes.io/service-account-token';
const BOOTSTRAP_TOKEN = 'bootstrap.kubernetes.io/token';
const SA_ANNOTATION = 'kubernetes.io/service-account.name';

type Schema = { properties?: Record<string, Schema>; 'x-kubernetes-validations'?: unknown };

/**
 * The ManagedSecret CRD as it was before the rules on target.type, labels and
 * annotations existed: today's, without those rules (the object the test
 * stores is the same either way, and this needs no old checkout).
 */
/** Whether today's ManagedSecret CRD has a rule on target.type that names this type. */
function crdRefusesType(type: string): boolean {
  const crd = crdObjects().find((c) => c.spec.names.kind === 'ManagedSecret');
  const target = (crd?.spec.versions[0]?.schema.openAPIV3Schema as Schema | undefined)?.properties?.spec?.properties
    ?.target?.properties;
  return JSON.stringify(target?.type?.['x-kubernetes-validations'] ?? []).includes(type);
}

function managedSecretCrdWithoutTargetRules(): CustomResourceDefinition {
  const crd = structuredClone(crdObjects().find((c) => c.spec.names.kind === 'ManagedSecret'));
  if (!crd) throw new Error('no ManagedSecret CRD');
  for (const version of crd.spec.versions) {
    const root = version.schema.openAPIV3Schema as Schema;
    const target = root.properties?.spec?.properties?.target?.properties;
    if (!target) throw new Error('the ManagedSecret schema has no spec.target');
    for (const field of ['type', 'labels', 'annotations']) delete target[field]?.['x-kubernetes-validations'];
  }
  return crd;
}

/** Replaces a CRD (GET for its resourceVersion, then PUT), retrying on conflict. */
async function replaceCrd(cluster: TestCluster, crd: CustomResourceDefinition): Promise<void> {
  await waitFor(
    `CRD ${crd.metadata.name} to be replaced`,
    async () => {
      const current = await cluster.adminRequest('GET', `${CRD_PATH}/${crd.metadata.name}`);
      const resourceVersion = (JSON.parse(current.body) as { metadata?: { resourceVersion?: string } }).metadata
        ?.resourceVersion;
      const res = await cluster.adminRequest('PUT', `${CRD_PATH}/${crd.metadata.name}`, {
        ...crd,
        metadata: { ...crd.metadata, resourceVersion },
      });
      if (res.status === 200) return true;
      if (res.status === 409) return undefined;
      throw new Error(`replacing CRD ${crd.metadata.name}: HTTP ${res.status}: ${res.body}`);
    },
    30_000,
  );
}

describe('security: Secret types and annotations the cluster acts on', function () {
  this.timeout(120_000);
  const client = () => adminClient(sharedCluster());
  const namespace = uniqueName('sectype');
  let fixture: LocalStoreFixture;
  let operator: RunningOperator | undefined;

  const hostile = (name: string, target: NonNullable<ManagedSecret['spec']['target']>) => ({
    metadata: { name },
    spec: {
      storeRef: { name: 'local' },
      refreshInterval: '1s',
      data: [{ secretKey: 'token', remoteRef: { key: 'db', property: 'password' } }],
      target,
    },
  });
  const saToken = (name = 'sa-token') => hostile(name, { type: SA_TOKEN, annotations: { [SA_ANNOTATION]: 'default' } });
  const bootstrap = (name = 'bootstrap') => hostile(name, { type: BOOTSTRAP_TOKEN });

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('db', { password: 'p1' });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('refuses the service-account-token and bootstrap token types and the service-account annotation at admission', async () => {
    const typeRule = 'target.type must be Opaque, one of';
    expect(await admissionRefusal(sharedCluster(), namespace, saToken('admit-sa-token'))).to.contain(typeRule);
    expect(await admissionRefusal(sharedCluster(), namespace, bootstrap('admit-bootstrap'))).to.contain(typeRule);
    expect(
      await admissionRefusal(
        sharedCluster(),
        namespace,
        hostile('sa-annotation', { annotations: { [SA_ANNOTATION]: 'default' } }),
      ),
    ).to.contain('target.annotations may not set keys under kubernetes.io/');
  });

  it('refuses, in the controller, objects stored before the rules existed: InvalidSpec and no Secret', async () => {
    const cluster = sharedCluster();
    const msPath = `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`;
    // The CRD before the rules: the hostile objects are stored (the API server may take a moment to serve it).
    await replaceCrd(cluster, managedSecretCrdWithoutTargetRules());
    try {
      for (const ms of [saToken(), bootstrap()])
        await waitFor(
          `ManagedSecret ${ms.metadata.name} to be stored under the CRD without the rules`,
          async () => {
            const res = await cluster.adminRequest('POST', msPath, {
              apiVersion: API_VERSION,
              kind: 'ManagedSecret',
              ...ms,
            });
            if (res.status === 201) return true;
            if (res.status === 422) return undefined;
            throw new Error(`creating ${ms.metadata.name}: HTTP ${res.status}: ${res.body}`);
          },
          30_000,
          200,
        );
    } finally {
      // Today's CRD again, and served: a dry run of the same object is refused (when the CRD has the rule at all).
      await applyCrds(cluster);
      if (crdRefusesType(SA_TOKEN))
        await waitFor(
          'the CRD with the rules to be served',
          async () =>
            (
              await cluster.adminRequest('POST', `${msPath}?dryRun=All`, {
                apiVersion: API_VERSION,
                kind: 'ManagedSecret',
                ...hostile('probe', { type: SA_TOKEN }),
              })
            ).status === 422
              ? true
              : undefined,
          30_000,
          200,
        );
    }

    operator = await startOperator(cluster, { namespaces: [namespace] });
    const ready = {
      'sa-token': await reconciled(client(), namespace, 'sa-token'),
      bootstrap: await reconciled(client(), namespace, 'bootstrap'),
    };
    // Several refreshes later (every second), still no Secret: nothing for the token controller to fill.
    const seen = new Set<string>();
    const until = Date.now() + 4_000;
    while (Date.now() < until) {
      for (const name of ['sa-token', 'bootstrap']) {
        const secret = await getSecret(client(), namespace, name);
        if (secret) seen.add(`${name}@${secret.metadata.resourceVersion ?? '?'}`);
      }
      await sleep(100);
    }
    expect([...seen], 'versions of the Secrets seen').to.deep.equal([]);
    for (const [name, type] of [
      ['sa-token', SA_TOKEN],
      ['bootstrap', BOOTSTRAP_TOKEN],
    ] as const) {
      expect(ready[name].reason, ready[name].message).to.equal('InvalidSpec');
      expect(ready[name].message).to.contain(`target.type: Secret type "${type}" is refused`);
      expect(await eventsAbout(client(), namespace, name, 'InvalidSpec')).to.have.length.greaterThan(0);
    }
  });
});
