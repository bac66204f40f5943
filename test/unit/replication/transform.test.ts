import { expect } from 'chai';
import type { ProviderSpec, ReplicationTarget } from '../../../src/api/types.js';
import type { KubeObject } from '../../../src/kube/client.js';
import {
  applyAwsOverrides,
  clusterStoreSelected,
  credentialSecretsOf,
  desiredCopy,
  desiredSecretCopy,
  namespacedSelected,
  replicatedSelector,
  resourcePath,
} from '../../../src/replication/transform.js';

const target = (spec: Partial<ReplicationTarget['spec']>): ReplicationTarget => ({
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'ReplicationTarget',
  metadata: { name: 'dr' },
  spec: { kubeconfigSecretRef: { name: 'k' }, ...spec },
});

const obj = (name: string, namespace?: string, labels: Record<string, string> = {}): KubeObject => ({
  metadata: { name, ...(namespace ? { namespace } : {}), labels },
});

describe('replication transform', () => {
  describe('applyAwsOverrides', () => {
    it('sets every override field on each AWS block, and on decrypt.kms only the fields it sets itself', () => {
      const provider: ProviderSpec = {
        awsSecretsManager: {
          region: 'us-east-1',
          requestsPerSecond: 5,
          decrypt: { kms: { region: 'us-east-1' } },
        },
      };
      const out = applyAwsOverrides(provider, {
        region: 'us-west-2',
        endpoint: 'http://dr:5000',
        roleArn: 'arn:aws:iam::123456789012:role/dr',
      });
      expect(out.awsSecretsManager).to.deep.equal({
        region: 'us-west-2',
        endpoint: 'http://dr:5000',
        roleArn: 'arn:aws:iam::123456789012:role/dr',
        requestsPerSecond: 5,
        // endpoint and roleArn are inherited from the (overridden) block
        decrypt: { kms: { region: 'us-west-2' } },
      });
      expect(provider.awsSecretsManager?.region, 'the input is not changed').to.equal('us-east-1');
    });

    it("leaves unset override fields alone, and gives a local store's decrypt.kms every field", () => {
      const provider: ProviderSpec = {
        local: {
          path: '/s',
          masterKeySecretRef: { name: 'mk' },
          decrypt: { kms: { region: 'us-east-1', endpoint: 'http://a' } },
        },
      };
      expect(applyAwsOverrides(provider, { region: 'eu-west-1' }).local?.decrypt?.kms).to.deep.equal({
        region: 'eu-west-1',
        endpoint: 'http://a',
      });
      expect(applyAwsOverrides(provider, undefined)).to.deep.equal(provider);
      expect(applyAwsOverrides({ awsKms: { region: 'a', endpoint: 'http://x' } }, { region: 'b' })).to.deep.equal({
        awsKms: { region: 'b', endpoint: 'http://x' },
      });
    });

    it('pins failover entries without a region to the source region when the region is overridden', () => {
      const provider: ProviderSpec = {
        awsSecretsManager: {
          region: 'us-east-1',
          failover: [{ endpoint: 'http://public:1' }, { region: 'eu-west-1' }],
          decrypt: { kms: { failover: [{ endpoint: 'http://kms-b:1' }] } },
        },
        local: {
          path: '/p',
          masterKeySecretRef: { name: 'mk' },
          decrypt: { kms: { region: 'eu-central-1', failover: [{ endpoint: 'http://k:1' }] } },
        },
      };
      const out = applyAwsOverrides(provider, { region: 'us-west-2' });
      expect(out.awsSecretsManager?.failover).to.deep.equal([
        { region: 'us-east-1', endpoint: 'http://public:1' },
        { region: 'eu-west-1' },
      ]);
      expect(out.awsSecretsManager?.decrypt?.kms?.failover).to.deep.equal([
        { region: 'us-east-1', endpoint: 'http://kms-b:1' },
      ]);
      expect(out.local?.decrypt?.kms?.failover).to.deep.equal([{ region: 'eu-central-1', endpoint: 'http://k:1' }]);
      // No region override: nothing to pin.
      expect(applyAwsOverrides(provider, { endpoint: 'http://dr:1' }).awsSecretsManager?.failover?.[0]).to.deep.equal({
        endpoint: 'http://public:1',
      });
    });
  });

  it('selects namespaced objects by namespace list and label selector', () => {
    expect(namespacedSelected(undefined, obj('a', 'ns'))).to.equal(false);
    expect(namespacedSelected({}, obj('a', 'ns'))).to.equal(true);
    expect(namespacedSelected({ namespaces: ['other'] }, obj('a', 'ns'))).to.equal(false);
    expect(namespacedSelected({ namespaces: ['ns'], selector: { matchLabels: { dr: 'y' } } }, obj('a', 'ns'))).to.equal(
      false,
    );
    expect(
      namespacedSelected({ namespaces: ['ns'], selector: { matchLabels: { dr: 'y' } } }, obj('a', 'ns', { dr: 'y' })),
    ).to.equal(true);
    expect(clusterStoreSelected(target({}), obj('c'))).to.equal(false);
    expect(clusterStoreSelected(target({ clusterStores: {} }), obj('c'))).to.equal(true);
    expect(
      clusterStoreSelected(
        target({ clusterStores: { selector: { matchExpressions: [{ key: 'dr', operator: 'Exists' }] } } }),
        obj('c', undefined, { dr: '' }),
      ),
    ).to.equal(true);
  });

  it('finds the credential and master key Secrets a store references', () => {
    const secretRef = (name: string, namespace?: string) => ({
      accessKeyIdSecretRef: { name, key: 'id', ...(namespace ? { namespace } : {}) },
      secretAccessKeySecretRef: { name, key: 'secret', ...(namespace ? { namespace } : {}) },
    });
    const store: KubeObject = {
      metadata: { name: 's', namespace: 'app' },
      spec: {
        provider: {
          awsParameterStore: {
            region: 'r',
            auth: { secretRef: secretRef('aws') },
            decrypt: {
              kms: { auth: { secretRef: { ...secretRef('kms'), sessionTokenSecretRef: { name: 'tok', key: 't' } } } },
            },
          },
        },
      },
    };
    expect(credentialSecretsOf(store)).to.deep.equal([
      { namespace: 'app', name: 'aws' },
      { namespace: 'app', name: 'kms' },
      { namespace: 'app', name: 'tok' },
    ]);
    const css: KubeObject = {
      metadata: { name: 'c' },
      spec: { provider: { local: { path: '/x', masterKeySecretRef: { name: 'mk', namespace: 'ops' } } } },
    };
    expect(credentialSecretsOf(css)).to.deep.equal([{ namespace: 'ops', name: 'mk' }]);
    // serviceAccountRef is an identity, not a Secret: nothing to copy.
    expect(
      credentialSecretsOf({
        metadata: { name: 's', namespace: 'app' },
        spec: { provider: { awsKms: { region: 'r', auth: { serviceAccountRef: { name: 'sa' } } } } },
      }),
    ).to.deep.equal([]);
  });

  it('copies spec and user metadata, never status or server-owned metadata, and adds our labels and annotations', () => {
    const source: KubeObject = {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretStore',
      metadata: {
        name: 's',
        namespace: 'app',
        uid: 'u-1',
        generation: 3,
        resourceVersion: '99',
        creationTimestamp: '2026-01-01T00:00:00Z',
        managedFields: [{ manager: 'kubectl' }],
        labels: { team: 'a' },
        annotations: { note: 'x', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'o', uid: 'o' }],
      },
      spec: { provider: { awsKms: { region: 'us-east-1' } } },
      status: { conditions: [] },
    };
    const ctx = { targetName: 'dr', clusterName: 'east', overrides: { region: 'us-west-2' } };
    const copy = desiredCopy('SecretStore', source, ctx);
    expect(copy.body).to.deep.equal({
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretStore',
      metadata: {
        name: 's',
        namespace: 'app',
        labels: { team: 'a', 'secretsync.io/replicated-by': 'dr', 'secretsync.io/source-cluster': 'east' },
        annotations: {
          note: 'x',
          'secretsync.io/source-cluster': 'east',
          'secretsync.io/source-uid': 'u-1',
          'secretsync.io/source-generation': '3',
          'secretsync.io/replication-hash': copy.hash,
        },
      },
      spec: { provider: { awsKms: { region: 'us-west-2' } } },
    });
    expect(desiredCopy('SecretStore', source, ctx).hash, 'stable').to.equal(copy.hash);
    expect(
      desiredCopy('SecretStore', { ...source, metadata: { ...source.metadata, labels: {} } }, ctx).hash,
    ).to.not.equal(copy.hash);
    // A ManagedSecret's spec is copied without rotation (only the primary rotates), and without rotate-now.
    const ms = desiredCopy(
      'ManagedSecret',
      {
        ...source,
        kind: 'ManagedSecret',
        metadata: {
          ...source.metadata,
          annotations: { 'secretsync.io/rotate-now': 'x', 'secretsync.io/force-sync': '1' },
        },
        spec: {
          storeRef: { name: 's' },
          rotation: { interval: '24h', generator: { uuid: {} }, remoteRef: { key: 'k' } },
          rolloutRestart: { auto: true },
        },
      },
      ctx,
    );
    expect(ms.body.spec).to.deep.equal({ storeRef: { name: 's' }, rolloutRestart: { auto: true } });
    expect(ms.body.metadata.annotations).to.not.have.property('secretsync.io/rotate-now');
    expect(ms.body.metadata.annotations).to.have.property('secretsync.io/force-sync', '1');

    const secret = desiredSecretCopy(
      { metadata: { name: 'aws', namespace: 'app', uid: 'u-2' }, type: 'Opaque', data: { k: 'dg==' } },
      ctx,
    );
    expect(secret.hash, 'no hash of secret data').to.equal(undefined);
    expect(JSON.stringify(secret.body.metadata)).to.not.contain('dg==');
    expect(secret.body).to.deep.include({ type: 'Opaque', data: { k: 'dg==' } });
  });

  it('builds paths and the label selector of our copies', () => {
    expect(resourcePath('ClusterSecretStore')).to.equal('/apis/secretsync.io/v1alpha1/clustersecretstores');
    expect(resourcePath('SecretStore', 'app', 's')).to.equal(
      '/apis/secretsync.io/v1alpha1/namespaces/app/secretstores/s',
    );
    expect(resourcePath('Secret', 'app', 'x')).to.equal('/api/v1/namespaces/app/secrets/x');
    expect(replicatedSelector('dr', 'east')).to.equal(
      'secretsync.io/replicated-by=dr,secretsync.io/source-cluster=east',
    );
  });
});
