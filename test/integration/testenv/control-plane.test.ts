import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  VersionApi,
  Watch,
  type V1Secret,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { builtKubernetesVersion, waitFor } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';

async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

describe('the test control plane', () => {
  it('reports the Kubernetes version it was built from', async () => {
    const info = await sharedCluster().kubeConfig().makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).to.equal(builtKubernetesVersion());
    expect(sharedCluster().version).to.equal(builtKubernetesVersion());
  });

  it('enforces RBAC: a ServiceAccount token cannot list Secrets until a Role and RoleBinding allow it', async () => {
    const cluster = sharedCluster();
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const rbac = cluster.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const namespace = uniqueName('rbac');
    const other = uniqueName('rbac-other');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespace({ body: { metadata: { name: other } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: 'reader',
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    expect(token ?? '', 'TokenRequest returned a token').to.have.length.greaterThan(0);
    const asReader = cluster.kubeConfigForToken(token ?? '').makeApiClient(CoreV1Api);

    expect(await statusOf(asReader.listNamespacedSecret({ namespace }))).to.equal(403);

    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'secret-reader' },
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'secret-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'secret-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
      },
    });
    // The authorizer learns of new bindings through its informer: allow a moment.
    await waitFor(
      'the RoleBinding to take effect',
      async () => ((await statusOf(asReader.listNamespacedSecret({ namespace }))) === 200 ? true : undefined),
      10_000,
    );
    expect(await statusOf(asReader.listNamespacedSecret({ namespace: other }))).to.equal(403);
  });

  it('delivers ADDED, MODIFIED and DELETED watch events for a Secret', async () => {
    const kc = sharedCluster().kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const namespace = uniqueName('watch');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const seen: string[] = [];
    const controller = await new Watch(kc).watch(
      `/api/v1/namespaces/${namespace}/secrets`,
      {},
      (type: string, obj: V1Secret) => {
        if (obj.metadata?.name === 'watched') seen.push(type);
      },
      () => undefined,
    );
    try {
      await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'watched' }, stringData: { a: '1' } } });
      await core.replaceNamespacedSecret({
        name: 'watched',
        namespace,
        body: { metadata: { name: 'watched' }, stringData: { a: '2' } },
      });
      await core.deleteNamespacedSecret({ name: 'watched', namespace });
      await waitFor('three watch events', async () => (seen.length >= 3 ? true : undefined), 10_000);
      expect(seen).to.deep.equal(['ADDED', 'MODIFIED', 'DELETED']);
    } finally {
      controller.abort();
    }
  });

  it('rejects an object that breaks a CRD CEL validation rule, with the rule message', async () => {
    const kc = sharedCluster().kubeConfig();
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const group = 'testenv.secretsync.io';
    const created = await sharedCluster().adminRequest(
      'POST',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `ranges.${group}` },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural: 'ranges', singular: 'range', kind: 'Range', listKind: 'RangeList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      properties: { min: { type: 'integer' }, max: { type: 'integer' } },
                      'x-kubernetes-validations': [
                        { rule: 'self.min <= self.max', message: 'min must not be greater than max' },
                      ],
                    },
                  },
                },
              },
            },
          ],
        },
      },
    );
    expect(created.status, created.body).to.equal(201);
    await waitFor(
      'the CRD to be established',
      async () => {
        const crd = await ext.readCustomResourceDefinition({ name: `ranges.${group}` });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      },
      20_000,
    );
    const create = (name: string, min: number, max: number) =>
      custom.createNamespacedCustomObject({
        group,
        version: 'v1',
        namespace: 'default',
        plural: 'ranges',
        body: { apiVersion: `${group}/v1`, kind: 'Range', metadata: { name }, spec: { min, max } },
      });
    // Discovery of a new CRD can lag its Established condition by a moment.
    await waitFor(
      'the valid object to be accepted',
      async () => ((await create('good', 1, 2)) ? true : undefined),
      20_000,
    );
    let rejection: ApiException<unknown> | undefined;
    try {
      await create('bad', 5, 1);
    } catch (err) {
      if (err instanceof ApiException) rejection = err;
      else throw err;
    }
    expect(rejection, 'the invalid object was rejected').to.not.equal(undefined);
    expect(rejection?.code).to.equal(422);
    expect(String(rejection?.body)).to.contain('min must not be greater than max');
  });

  it('garbage-collects a dependent when its owner is deleted', async () => {
    const core = sharedCluster().kubeConfig().makeApiClient(CoreV1Api);
    const namespace = uniqueName('gc');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: 'dependent',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '' }],
        },
      },
    });
    expect(await statusOf(core.readNamespacedConfigMap({ name: 'dependent', namespace }))).to.equal(200);
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace, propagationPolicy: 'Background' });
    await waitFor(
      'the dependent to be garbage-collected',
      async () =>
        (await statusOf(core.readNamespacedConfigMap({ name: 'dependent', namespace }))) === 404 ? true : undefined,
      60_000,
      500,
    );
  });
});
