// The secretsync.io CRDs on a real kube-apiserver: they install, the examples
// are accepted with the API server's defaults, and invalid objects are refused
// with the messages of our CEL rules.
import { ApiException, CoreV1Api, CustomObjectsApi, type V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { crdObjects } from '../../../src/api/install.js';
import { INLINE_CIPHERTEXT_PATTERN } from '../../../src/api/schemas.js';
import {
  API_VERSION,
  GROUP,
  VERSION,
  type AwsAuthSpec,
  type AwsCommonSpec,
  type ClusterSecretStore,
  type ManagedSecret,
  type SecretStore,
  type TargetTemplate,
} from '../../../src/api/types.js';
import { ensureKubeClients } from '../../../tools/testenv/index.js';
import { applyCrds, installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';

const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

type Example = V1Secret | SecretStore | ClusterSecretStore | ManagedSecret;

function example(file: string): Example[] {
  const text = readFileSync(new URL(`../../../examples/${file}`, import.meta.url), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as Example);
}

function one(docs: Example[], kind: Example['kind']): Example {
  const found = docs.find((d) => d.kind === kind);
  if (!found) throw new Error(`no ${kind} in the example`);
  return structuredClone(found);
}

/** The error the API server answered with, or a failure if it accepted the object. */
async function rejection(call: Promise<unknown>): Promise<ApiException<unknown>> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ApiException) return err;
    throw err;
  }
  throw new Error('the API server accepted an object it should have refused');
}

describe('the secretsync.io CRDs on a real API server', () => {
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  let namespace: string;

  const validStore = (): SecretStore => ({
    apiVersion: API_VERSION,
    kind: 'SecretStore',
    metadata: { name: uniqueName('store') },
    spec: { provider: { local: { path: '/var/lib/secretsync/store', masterKeySecretRef: { name: 'master' } } } },
  });
  const validClusterStore = (): ClusterSecretStore => ({
    apiVersion: API_VERSION,
    kind: 'ClusterSecretStore',
    metadata: { name: uniqueName('cstore') },
    spec: {
      provider: {
        local: { path: '/var/lib/secretsync/shared', masterKeySecretRef: { name: 'master', namespace: 'secretsync' } },
      },
    },
  });
  const awsSecretRefAuth = (namespace?: string): AwsAuthSpec => {
    const ref = (key: string) => ({ name: 'aws-credentials', key, ...(namespace ? { namespace } : {}) });
    return {
      secretRef: { accessKeyIdSecretRef: ref('access-key-id'), secretAccessKeySecretRef: ref('secret-access-key') },
    };
  };
  const roleArn = 'arn:aws:iam::123456789012:role/secretsync';
  const awsStore = (block: 'awsKms' | 'awsSecretsManager' | 'awsParameterStore', aws: AwsCommonSpec): SecretStore => ({
    ...validStore(),
    spec: { provider: { [block]: aws } },
  });
  const awsClusterStore = (
    block: 'awsKms' | 'awsSecretsManager' | 'awsParameterStore',
    aws: AwsCommonSpec,
  ): ClusterSecretStore => ({ ...validClusterStore(), spec: { provider: { [block]: aws } } });
  const validManagedSecret = (): ManagedSecret => ({
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    metadata: { name: uniqueName('ms') },
    spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'password', remoteRef: { key: 'app/db' } }] },
  });

  const createStore = async (body: SecretStore) =>
    (await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'secretstores',
      body,
    })) as SecretStore;
  /** Cluster-scoped: every later test's operator would see them, so they are deleted after the file. */
  const clusterStoresCreated: string[] = [];
  const createClusterStore = async (body: ClusterSecretStore) => {
    const created = (await custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'clustersecretstores',
      body,
    })) as ClusterSecretStore;
    clusterStoresCreated.push(created.metadata.name);
    return created;
  };
  const createManagedSecret = async (body: ManagedSecret) =>
    (await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'managedsecrets',
      body,
    })) as ManagedSecret;

  async function expectRefused(call: Promise<unknown>, ...messages: string[]): Promise<void> {
    const err = await rejection(call);
    expect(err.code, String(err.body)).to.equal(422);
    // The body is a Status; its message lists every field error, as kubectl prints it.
    const status = JSON.parse(String(err.body)) as { message?: string };
    for (const message of messages) expect(status.message).to.contain(message);
  }

  before(async () => {
    const cluster = sharedCluster();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    namespace = uniqueName('crds');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  after(async () => {
    for (const name of clusterStoresCreated)
      await custom
        .deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'clustersecretstores', name })
        .catch(() => undefined);
  });

  describe('installation', () => {
    it('installs all our CRDs Established, with their CEL rules, status subresource and printer columns', async () => {
      for (const want of crdObjects()) {
        const res = await sharedCluster().adminRequest('GET', `${CRD_PATH}/${want.metadata.name}`);
        expect(res.status, res.body).to.equal(200);
        const got = JSON.parse(res.body) as typeof want & {
          status: { conditions: { type: string; status: string }[] };
        };
        expect(got.status.conditions.find((c) => c.type === 'Established')?.status).to.equal('True');
        const version = got.spec.versions[0];
        expect(version?.subresources).to.deep.equal({ status: {} });
        expect(version?.additionalPrinterColumns.map((c) => c.name)).to.include.members(['Ready', 'Reason', 'Age']);
        // Sent as raw JSON, the rules survive (client-node's typed models would have dropped them).
        expect(version?.schema.openAPIV3Schema).to.deep.equal(want.spec.versions[0]?.schema.openAPIV3Schema);
      }
    });

    it('installCrds is idempotent, and re-applying replaces the CRDs in place', async () => {
      const cluster = sharedCluster();
      await Promise.all([installCrds(cluster), installCrds(cluster)]);
      await applyCrds(cluster); // takes the 409 → GET → PUT path
      const res = await cluster.adminRequest('GET', `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/managedsecrets`);
      expect(res.status).to.equal(200);
    });
  });

  describe('valid objects', () => {
    it('accepts examples/local-store.yaml and fills in masterKeySecretRef.key', async () => {
      const docs = example('local-store.yaml');
      await core.createNamespacedSecret({ namespace, body: one(docs, 'Secret') as V1Secret });
      const store = await createStore(one(docs, 'SecretStore') as SecretStore);
      expect(store.spec.provider.local?.path).to.equal('/var/lib/secretsync/store/team-a');
      expect(store.spec.provider.local?.masterKeySecretRef.key).to.equal('master-key');
    });

    it('accepts examples/cluster-secret-store.yaml', async () => {
      const css = one(example('cluster-secret-store.yaml'), 'ClusterSecretStore') as ClusterSecretStore;
      css.metadata.name = uniqueName('shared');
      const created = await createClusterStore(css);
      expect(created.spec.conditions).to.have.length(2);
      expect(created.spec.provider.local?.masterKeySecretRef.namespace).to.equal('secretsync-system');
    });

    it('accepts examples/managed-secret.yaml and applies the defaults', async () => {
      const ms = one(example('managed-secret.yaml'), 'ManagedSecret') as ManagedSecret;
      const created = await createManagedSecret(ms);
      expect(created.spec.storeRef).to.deep.equal({ kind: 'SecretStore', name: 'local' });
      expect(created.spec.refreshInterval).to.equal('1h');
      expect(created.spec.target?.creationPolicy).to.equal('Owner');
      expect(created.spec.target?.deletionPolicy).to.equal('Retain');
      // No schema default: the operator picks Opaque, or kubernetes.io/tls for a certificate source.
      expect(created.spec.target?.type).to.equal(undefined);
      expect(created.spec.target?.template?.mergePolicy).to.equal('Merge');
      expect(created.spec.refreshSchedule).to.equal(undefined);
      expect(created.spec.data?.map((d) => d.secretKey)).to.deep.equal(['username', 'password']);
    });

    it('adds no defaults for an absent target', async () => {
      const created = await createManagedSecret(validManagedSecret());
      expect(created.spec.target).to.equal(undefined);
      expect(created.spec.refreshInterval).to.equal('1h');
    });

    for (const refreshInterval of ['0', '30s', '15m', '1h30m', '1.5h', '500ms']) {
      it(`accepts refreshInterval ${refreshInterval}`, async () => {
        const ms = validManagedSecret();
        ms.spec.refreshInterval = refreshInterval;
        expect((await createManagedSecret(ms)).spec.refreshInterval).to.equal(refreshInterval);
      });
    }

    for (const refreshSchedule of ['0 * * * *', '*/15 9-17 * * mon-fri', '0 0 1,15 JAN-JUN ?', '@daily', '@yearly']) {
      it(`accepts refreshSchedule '${refreshSchedule}'`, async () => {
        const ms = validManagedSecret();
        ms.spec.refreshSchedule = refreshSchedule;
        expect((await createManagedSecret(ms)).spec.refreshSchedule).to.equal(refreshSchedule);
      });
    }

    it('accepts an awsSecretsManager SecretStore with region and auth.secretRef, and defaults requestsPerSecond', async () => {
      const created = await createStore(
        awsStore('awsSecretsManager', { region: 'eu-west-1', auth: awsSecretRefAuth() }),
      );
      const sm = created.spec.provider.awsSecretsManager;
      expect(sm?.region).to.equal('eu-west-1');
      expect(sm?.auth?.secretRef?.accessKeyIdSecretRef).to.deep.equal({
        name: 'aws-credentials',
        key: 'access-key-id',
      });
      expect(sm?.requestsPerSecond).to.equal(10);
    });

    it('accepts an awsKms ClusterSecretStore with auth.serviceAccountRef (namespace set) and roleArn', async () => {
      const created = await createClusterStore(
        awsClusterStore('awsKms', {
          region: 'eu-west-1',
          endpoint: 'http://moto.test:5000',
          auth: { serviceAccountRef: { name: 'app', namespace: 'team-a', audiences: ['sts.amazonaws.com'] } },
          roleArn,
          requestsPerSecond: 2.5,
        }),
      );
      const kms = created.spec.provider.awsKms;
      expect(kms?.auth?.serviceAccountRef).to.deep.equal({
        name: 'app',
        namespace: 'team-a',
        audiences: ['sts.amazonaws.com'],
      });
      expect(kms?.roleArn).to.equal(roleArn);
      expect(kms?.requestsPerSecond).to.equal(2.5);
    });

    it('accepts an awsParameterStore store with decrypt.kms, whose absent fields (region too) come from the block', async () => {
      const store = awsStore('awsParameterStore', { region: 'eu-west-1' });
      const kmsRole = 'arn:aws:iam::123456789012:role/kms-decrypt';
      if (store.spec.provider.awsParameterStore)
        store.spec.provider.awsParameterStore.decrypt = { kms: { roleArn: kmsRole } };
      const created = await createStore(store);
      expect(created.spec.provider.awsParameterStore?.decrypt).to.deep.equal({ kms: { roleArn: kmsRole } });
    });

    it('accepts a local store with decrypt.kms {region}', async () => {
      const store = validStore();
      if (store.spec.provider.local) store.spec.provider.local.decrypt = { kms: { region: 'eu-west-1' } };
      const created = await createStore(store);
      expect(created.spec.provider.local?.decrypt).to.deep.equal({ kms: { region: 'eu-west-1' } });
    });

    it('accepts a data item with a ciphertext and no remoteRef', async () => {
      const ms = validManagedSecret();
      ms.spec.data = [{ secretKey: 'api-token', ciphertext: 'secretsync:v1:AbC_-9' }];
      const created = await createManagedSecret(ms);
      expect(created.spec.data).to.deep.equal([{ secretKey: 'api-token', ciphertext: 'secretsync:v1:AbC_-9' }]);
    });

    it('keeps status apart from spec (status subresource) and shows it in the printer columns', async () => {
      const ms = await createManagedSecret(validManagedSecret());
      const name = ms.metadata.name;
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      await custom.replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'managedsecrets',
        name,
        body: {
          ...ms,
          status: {
            observedGeneration: 1,
            lastSyncTime: now,
            secretName: name,
            conditions: [
              {
                type: 'Ready',
                status: 'True',
                reason: 'Synced',
                message: 'synced 1 key',
                lastTransitionTime: now,
                observedGeneration: 1,
              },
            ],
          },
        },
      });
      const { kubectl } = await ensureKubeClients();
      const { stdout } = await promisify(execFile)(kubectl, [
        '--kubeconfig',
        sharedCluster().kubeconfigPath,
        'get',
        'ms',
        name,
        '-n',
        namespace,
      ]);
      const [header, row] = stdout.trimEnd().split('\n');
      expect(header?.split(/\s{2,}/)).to.deep.equal(['NAME', 'READY', 'REASON', 'STORE', 'LAST SYNC', 'AGE']);
      expect(row?.split(/\s+/).slice(0, 4)).to.deep.equal([name, 'True', 'Synced', 'local']);
    });
  });

  describe('invalid objects are refused with a clear message', () => {
    it('a store with no provider block (the rule is "exactly one": [has(self.local), ...].exists_one)', async () => {
      const store = validStore();
      store.spec.provider = {};
      await expectRefused(
        createStore(store),
        'provider must set exactly one provider block (one of: local, awsKms, awsSecretsManager, awsParameterStore, vault, ibmSecretsManager)',
      );
      const css = validClusterStore();
      css.spec.provider = {};
      await expectRefused(createClusterStore(css), 'provider must set exactly one provider block');
    });

    it('a store with two provider blocks (local and awsKms)', async () => {
      const store = validStore();
      store.spec.provider.awsKms = { region: 'eu-west-1' };
      await expectRefused(createStore(store), 'provider must set exactly one provider block');
      const css = validClusterStore();
      css.spec.provider.awsKms = { region: 'eu-west-1' };
      await expectRefused(createClusterStore(css), 'provider must set exactly one provider block');
    });

    it('an AWS block without region, or a local decrypt.kms without region', async () => {
      // Deliberately not an AwsCommonSpec: region is missing.
      const noRegion = awsStore('awsSecretsManager', { auth: awsSecretRefAuth() } as unknown as AwsCommonSpec);
      await expectRefused(createStore(noRegion), 'spec.provider.awsSecretsManager.region', 'Required value');
      const local = validStore();
      if (local.spec.provider.local) local.spec.provider.local.decrypt = { kms: { endpoint: 'http://moto.test:5000' } };
      await expectRefused(createStore(local), 'spec.provider.local.decrypt.kms.region', 'Required value');
    });

    it('auth.serviceAccountRef without roleArn', async () => {
      const store = awsStore('awsSecretsManager', {
        region: 'eu-west-1',
        auth: { serviceAccountRef: { name: 'app' } },
      });
      await expectRefused(
        createStore(store),
        'spec.provider.awsSecretsManager',
        'auth.serviceAccountRef needs roleArn: the role its token is exchanged for',
      );
    });

    it('auth with both secretRef and serviceAccountRef', async () => {
      const store = awsStore('awsParameterStore', {
        region: 'eu-west-1',
        auth: { ...awsSecretRefAuth(), serviceAccountRef: { name: 'app' } },
        roleArn,
      });
      await expectRefused(
        createStore(store),
        'spec.provider.awsParameterStore.auth',
        'auth sets at most one of secretRef or serviceAccountRef',
      );
    });

    it('a SecretStore whose serviceAccountRef sets namespace', async () => {
      const store = awsStore('awsKms', {
        region: 'eu-west-1',
        auth: { serviceAccountRef: { name: 'app', namespace: 'elsewhere' } },
        roleArn,
      });
      await expectRefused(
        createStore(store),
        'spec.provider.awsKms.auth.serviceAccountRef',
        'a SecretStore may only use ServiceAccounts of its own namespace: remove serviceAccountRef.namespace',
      );
    });

    it('a ClusterSecretStore whose secretRef selectors lack namespace', async () => {
      const css = awsClusterStore('awsSecretsManager', { region: 'eu-west-1', auth: awsSecretRefAuth() });
      await expectRefused(
        createClusterStore(css),
        'spec.provider.awsSecretsManager.auth.secretRef.accessKeyIdSecretRef',
        'spec.provider.awsSecretsManager.auth.secretRef.secretAccessKeySecretRef',
        'a ClusterSecretStore must set the namespace of the Secret',
      );
    });

    it('a data item with both remoteRef and ciphertext, or with neither', async () => {
      const both = validManagedSecret();
      both.spec.data = [{ secretKey: 'password', remoteRef: { key: 'app/db' }, ciphertext: 'secretsync:v1:AbC_-9' }];
      await expectRefused(
        createManagedSecret(both),
        'spec.data[0]',
        'each data item sets exactly one of remoteRef or ciphertext',
      );
      const neither = validManagedSecret();
      neither.spec.data = [{ secretKey: 'password' }];
      await expectRefused(
        createManagedSecret(neither),
        'spec.data[0]',
        'each data item sets exactly one of remoteRef or ciphertext',
      );
    });

    for (const ciphertext of ['plaintext', 'secretsync:v2:AbC', 'secretsync:v1:', 'secretsync:v1:a+b/c=']) {
      it(`a ciphertext that is not secretsync:v1:<base64url>: '${ciphertext}'`, async () => {
        const ms = validManagedSecret();
        ms.spec.data = [{ secretKey: 'api-token', ciphertext }];
        await expectRefused(
          createManagedSecret(ms),
          'spec.data[0].ciphertext',
          `should match '${INLINE_CIPHERTEXT_PATTERN}'`,
        );
      });
    }

    it('a SecretStore that sets masterKeySecretRef.namespace', async () => {
      const store = validStore();
      if (store.spec.provider.local) store.spec.provider.local.masterKeySecretRef.namespace = 'elsewhere';
      await expectRefused(
        createStore(store),
        'spec.provider.local.masterKeySecretRef.namespace',
        'a SecretStore reads its master key from its own namespace',
      );
    });

    it('a ClusterSecretStore without masterKeySecretRef.namespace', async () => {
      const css = validClusterStore();
      delete css.spec.provider.local?.masterKeySecretRef.namespace;
      await expectRefused(createClusterStore(css), 'a ClusterSecretStore must set masterKeySecretRef.namespace');
    });

    it('a ClusterSecretStore condition that matches nothing, or a selector requirement without values', async () => {
      const empty = validClusterStore();
      empty.spec.conditions = [{}];
      await expectRefused(createClusterStore(empty), 'a condition must set namespaces, namespaceSelector or both');
      const noValues = validClusterStore();
      noValues.spec.conditions = [{ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In' }] } }];
      await expectRefused(createClusterStore(noValues), 'values must be non-empty for operators In and NotIn');
    });

    it('a refreshInterval that is not a duration', async () => {
      const ms = validManagedSecret();
      ms.spec.refreshInterval = 'ten minutes';
      await expectRefused(createManagedSecret(ms), 'refreshInterval must be a duration such as 30s, 15m, 1h or 0');
    });

    for (const refreshSchedule of ['every monday', '* * *', '* * * * * *']) {
      it(`a refreshSchedule that is not a 5-field cron expression: '${refreshSchedule}'`, async () => {
        const ms = validManagedSecret();
        ms.spec.refreshSchedule = refreshSchedule;
        await expectRefused(
          createManagedSecret(ms),
          "refreshSchedule must be a cron expression with 5 fields, e.g. '0 * * * *', or @hourly/@daily/@weekly/@monthly",
        );
      });
    }

    it('an unknown creationPolicy', async () => {
      const ms = validManagedSecret();
      ms.spec.target = { creationPolicy: 'Sometimes' as 'Owner' };
      await expectRefused(
        createManagedSecret(ms),
        'spec.target.creationPolicy',
        'Unsupported value: "Sometimes"',
        'supported values: "Owner", "Orphan", "Merge", "None"',
      );
    });

    it('a dataFrom item with both extract and find, or a find with both prefix and nameRegexp', async () => {
      const both = validManagedSecret();
      both.spec.dataFrom = [{ extract: { key: 'app/a' }, find: { prefix: 'app/' } }];
      await expectRefused(
        createManagedSecret(both),
        'each dataFrom item must set exactly one of extract, find, certificate or dynamic',
      );
      const neither = validManagedSecret();
      neither.spec.dataFrom = [{}];
      await expectRefused(
        createManagedSecret(neither),
        'each dataFrom item must set exactly one of extract, find, certificate or dynamic',
      );
      const find = validManagedSecret();
      find.spec.dataFrom = [{ find: { prefix: 'app/', nameRegexp: '^app/' } }];
      await expectRefused(createManagedSecret(find), 'find must set exactly one of prefix or nameRegexp');
    });

    it('a ManagedSecret with neither data nor dataFrom', async () => {
      const ms = validManagedSecret();
      delete ms.spec.data;
      await expectRefused(createManagedSecret(ms), 'a ManagedSecret needs at least one data or dataFrom item');
      ms.spec.data = [];
      ms.spec.dataFrom = [];
      await expectRefused(createManagedSecret(ms), 'a ManagedSecret needs at least one data or dataFrom item');
    });

    it('two data items with the same secretKey', async () => {
      const ms = validManagedSecret();
      ms.spec.data = [
        { secretKey: 'password', remoteRef: { key: 'app/db' } },
        { secretKey: 'password', remoteRef: { key: 'app/other' } },
      ];
      await expectRefused(createManagedSecret(ms), 'data[].secretKey must be unique');
    });

    it('a secretKey or template key that is not a valid Secret key', async () => {
      const ms = validManagedSecret();
      ms.spec.data = [{ secretKey: 'not a key', remoteRef: { key: 'app/db' } }];
      await expectRefused(createManagedSecret(ms), 'spec.data[0].secretKey', 'should match');
      const tpl = validManagedSecret();
      tpl.spec.target = { template: { data: { 'not a key': '{{ password }}' } } };
      await expectRefused(createManagedSecret(tpl), 'template.data keys must be valid Secret keys');
    });

    it('a template without data', async () => {
      const ms = validManagedSecret();
      // Deliberately not a TargetTemplate: data is missing.
      ms.spec.target = { template: { mergePolicy: 'Merge' } as unknown as TargetTemplate };
      await expectRefused(createManagedSecret(ms), 'spec.target.template.data', 'Required value');
    });

    for (const type of [
      'kubernetes.io/service-account-token',
      'bootstrap.kubernetes.io/token',
      'kubernetes.io/some-new-type',
      'k8s.io/x',
    ])
      it(`a target.type the cluster acts on: ${type}`, async () => {
        const ms = validManagedSecret();
        ms.spec.target = { type };
        await expectRefused(
          createManagedSecret(ms),
          'spec.target.type',
          'target.type must be Opaque, one of kubernetes.io/tls',
          'the cluster acts on Secrets of other kubernetes.io types',
        );
      });

    it('an empty target.type', async () => {
      const ms = validManagedSecret();
      ms.spec.target = { type: '' };
      await expectRefused(createManagedSecret(ms), 'spec.target.type', 'should be at least 1 chars long');
    });

    for (const [field, key] of [
      ['annotations', 'kubernetes.io/service-account.name'],
      ['annotations', 'kubernetes.io/service-account.uid'],
      ['labels', 'node-role.kubernetes.io/control-plane'],
      ['annotations', 'KUBERNETES.IO/service-account.name'],
    ] as const)
      it(`a target.${field} key the cluster acts on: ${key}`, async () => {
        const ms = validManagedSecret();
        ms.spec.target = { [field]: { fine: 'x', [key]: 'default' } };
        await expectRefused(
          createManagedSecret(ms),
          `spec.target.${field}`,
          `target.${field} may not set keys under kubernetes.io/ or k8s.io/`,
        );
      });

    it('a target annotation under secretsync.io/ (our bookkeeping)', async () => {
      const ms = validManagedSecret();
      ms.spec.target = { annotations: { 'secretsync.io/managed-secret': 'someone-else' } };
      await expectRefused(createManagedSecret(ms), 'target.annotations may not set secretsync.io/ keys');
    });

    for (const pattern of ['^app/(?=prod)', '(?<!test/)db', '^(a)\\1$', '(?<x>a)\\k<x>'])
      it(`a find.nameRegexp RE2 does not support: ${pattern}`, async () => {
        const ms = validManagedSecret();
        ms.spec.dataFrom = [{ find: { nameRegexp: pattern } }];
        await expectRefused(
          createManagedSecret(ms),
          'spec.dataFrom[0].find.nameRegexp',
          'find.nameRegexp is RE2 syntax, which has no lookahead or lookbehind',
        );
      });

    it('oversized templates, label values and nameRegexps', async () => {
      const template = validManagedSecret();
      template.spec.target = { template: { data: { big: 'x'.repeat(65_537) } } };
      await expectRefused(createManagedSecret(template), 'spec.target.template.data.big', 'Too long');
      const label = validManagedSecret();
      label.spec.target = { labels: { team: 'x'.repeat(64) } };
      await expectRefused(createManagedSecret(label), 'spec.target.labels.team', 'Too long');
      const pattern = validManagedSecret();
      pattern.spec.dataFrom = [{ find: { nameRegexp: 'a'.repeat(1025) } }];
      await expectRefused(createManagedSecret(pattern), 'spec.dataFrom[0].find.nameRegexp', 'Too long');
    });

    it('accepts what the rules allow: shape-only kubernetes.io types, custom types, app.kubernetes.io/ keys, escaped look-alikes', async () => {
      for (const type of ['kubernetes.io/tls', 'kubernetes.io/dockerconfigjson', 'example.com/kind', 'Opaque']) {
        const ms = validManagedSecret();
        ms.spec.target = {
          type,
          labels: { 'app.kubernetes.io/name': 'db', team: 'a' },
          annotations: { 'reloader.stakater.com/match': 'true', 'notkubernetes.io/x': 'y' },
        };
        ms.spec.dataFrom = [{ find: { nameRegexp: '^app/\\(\\?=literal\\)\\\\1' } }];
        const created = await createManagedSecret(ms);
        expect(created.spec.target?.type).to.equal(type);
      }
    });
  });
});
