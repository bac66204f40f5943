// What a backup keeps of an object, and how a restore decides "unchanged".
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  entryFileName,
  exportCluster,
  exportLocalStore,
  exportObject,
  exportSecret,
} from '../../../src/backup/export.js';
import { KubeApiError, type KubeList, type KubeObject } from '../../../src/kube/client.js';
import { objectMatches, secretMatches } from '../../../src/backup/import.js';
import { referencedSecrets } from '../../../src/backup/kinds.js';
import { LocalStore } from '../../../src/providers/local/store.js';
import { rejectionOf } from '../helpers/index.js';

const live = {
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'ManagedSecret',
  metadata: {
    name: 'db',
    namespace: 'team-a',
    uid: '1234',
    resourceVersion: '99',
    generation: 3,
    creationTimestamp: '2026-01-01T00:00:00Z',
    managedFields: [{ manager: 'kubectl' }],
    ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'old-uid' }],
    finalizers: ['example.com/keep'],
    labels: { app: 'db' },
    annotations: { note: 'hello' },
  },
  spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'a', remoteRef: { key: 'k' } }] },
  status: { conditions: [] },
};

describe('backup export and restore comparison', () => {
  it('keeps name, namespace, labels, annotations and spec; drops what the cluster assigned, owners and finalizers', () => {
    expect(exportObject(live)).to.deep.equal({
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'ManagedSecret',
      metadata: { name: 'db', namespace: 'team-a', labels: { app: 'db' }, annotations: { note: 'hello' } },
      spec: live.spec,
    });
  });

  it('an object is unchanged when its spec is equal and the backup labels and annotations are present', () => {
    const want = exportObject(live);
    expect(objectMatches(want, live)).to.equal(true);
    expect(
      objectMatches(want, { ...live, metadata: { ...live.metadata, labels: { app: 'db', extra: '1' } } }),
    ).to.equal(true);
    expect(objectMatches(want, { ...live, metadata: { ...live.metadata, labels: {} } })).to.equal(false);
    expect(objectMatches(want, { ...live, spec: { ...live.spec, refreshInterval: '1m' } })).to.equal(false);
  });

  it('a synced Secret keeps its owning ManagedSecret by name, and matches on type and data only', () => {
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'db',
        namespace: 'team-a',
        uid: 'u',
        labels: { 'secretsync.io/managed': 'true' },
        annotations: { 'secretsync.io/managed-secret': 'db' },
        ownerReferences: [
          { apiVersion: 'secretsync.io/v1alpha1', kind: 'ManagedSecret', name: 'db', uid: 'old', controller: true },
        ],
      },
      type: 'Opaque',
      data: { a: 'YQ==' },
    };
    const exported = exportSecret(secret);
    expect(exported).to.deep.include({ namespace: 'team-a', name: 'db', ownerManagedSecret: 'db', immutable: false });
    expect(secretMatches(exported, { ...secret, metadata: { ...secret.metadata, annotations: {} } })).to.equal(true);
    expect(secretMatches(exported, { ...secret, data: { a: 'Yg==' } })).to.equal(false);
    expect(secretMatches(exported, { ...secret, type: 'kubernetes.io/tls' })).to.equal(false);
  });

  it('copies local store entry files byte for byte and refuses a file that does not hold its entry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'secretsync-backup-unit-'));
    try {
      const store = new LocalStore(dir, randomBytes(32));
      const value = `v-${randomBytes(6).toString('hex')}`;
      await store.put('db/prod', { password: value });
      store.close();
      const entries = await exportLocalStore(dir);
      expect(entries.map((e) => e.name)).to.deep.equal(['db/prod']);
      expect(entries[0]?.file).not.to.include(value);
      await writeFile(join(dir, entryFileName('other')), entries[0]?.file ?? '');
      expect((await rejectionOf(exportLocalStore(dir))).message).to.include('does not hold the entry its name says');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('finds the Secrets a store reads (master keys, AWS credentials) for the restore notes', () => {
    const store = (kind: string, namespace: string | undefined, spec: unknown) => ({
      apiVersion: 'secretsync.io/v1alpha1',
      kind,
      metadata: { name: 's', ...(namespace ? { namespace } : {}) },
      spec,
    });
    expect(
      referencedSecrets(
        store('SecretStore', 'team-a', { provider: { local: { path: '/x', masterKeySecretRef: { name: 'mk' } } } }),
      ),
    ).to.deep.equal([{ namespace: 'team-a', name: 'mk' }]);
    const aws = {
      provider: {
        awsSecretsManager: {
          region: 'eu-west-1',
          auth: {
            secretRef: {
              accessKeyIdSecretRef: { name: 'aws', key: 'id', namespace: 'ops' },
              secretAccessKeySecretRef: { name: 'aws', key: 'secret', namespace: 'ops' },
              sessionTokenSecretRef: { name: 'token', key: 't' },
            },
          },
        },
      },
    };
    // A ClusterSecretStore ref without a namespace names no Secret; a SecretStore's refs are in its own namespace.
    expect(referencedSecrets(store('ClusterSecretStore', undefined, aws))).to.deep.equal([
      { namespace: 'ops', name: 'aws' },
    ]);
    expect(referencedSecrets(store('SecretStore', 'team-b', aws))).to.deep.equal([
      { namespace: 'team-b', name: 'aws' },
      { namespace: 'team-b', name: 'token' },
    ]);
  });

  it("finds a ReplicationTarget's kubeconfig Secret in the operator namespace; ManagedSecrets name no credentials", () => {
    const rt = {
      kind: 'ReplicationTarget',
      metadata: { name: 'dr' },
      spec: { kubeconfigSecretRef: { name: 'dr-kc', key: 'kubeconfig' }, clusterStores: {} },
    };
    expect(referencedSecrets(rt, 'secretsync-system')).to.deep.equal([
      { namespace: 'secretsync-system', name: 'dr-kc' },
    ]);
    // Without the operator namespace its Secret cannot be named.
    expect(referencedSecrets(rt)).to.deep.equal([]);
    expect(
      referencedSecrets(
        {
          kind: 'ManagedSecret',
          metadata: { name: 'm', namespace: 'a' },
          spec: { fooSecretRef: { name: 'x', namespace: 'a' } },
        },
        'secretsync-system',
      ),
    ).to.deep.equal([]);
  });

  describe('exportCluster', () => {
    /** A list-only stand-in for our KubeClient: paths map to items, or to a 404 when a CRD is not installed. */
    function fakeLister(collections: Record<string, KubeObject[] | 404>) {
      const listed: string[] = [];
      return {
        listed,
        async list<T>(path: string): Promise<KubeList<T>> {
          listed.push(path);
          const items = collections[path];
          if (items === 404 || items === undefined) throw new KubeApiError(404, 'NotFound', `GET ${path}: not found`);
          return { metadata: {}, items: items as T[] };
        },
      };
    }
    const base = '/apis/secretsync.io/v1alpha1';
    const rt = { metadata: { name: 'dr-site', uid: 'x' }, spec: { cluster: 'b' } };

    it('includes ReplicationTargets by group/version/resource when the CRD is installed', async () => {
      const client = fakeLister({
        [`${base}/clustersecretstores`]: [],
        [`${base}/secretstores`]: [],
        [`${base}/replicationtargets`]: [rt],
        [`${base}/managedsecrets`]: [live],
      });
      const result = await exportCluster(client);
      expect(result.contents).to.deep.equal({
        secretStores: 0,
        clusterSecretStores: 0,
        replicationTargets: 1,
        managedSecrets: 1,
      });
      expect(result.skipped).to.deep.equal([]);
      expect(result.payload.objects.map((o) => o.kind)).to.deep.equal(['ReplicationTarget', 'ManagedSecret']);
      expect(result.payload.objects[0]).to.deep.equal({
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'ReplicationTarget',
        metadata: { name: 'dr-site' },
        spec: { cluster: 'b' },
      });
    });

    it('treats a 404 for ReplicationTargets as none (reported), but a 404 for another kind as an error', async () => {
      const result = await exportCluster(
        fakeLister({
          [`${base}/clustersecretstores`]: [],
          [`${base}/secretstores`]: [],
          [`${base}/replicationtargets`]: 404,
          [`${base}/managedsecrets`]: [],
        }),
      );
      expect(result.contents.replicationTargets).to.equal(null);
      expect(result.skipped).to.deep.equal(['ReplicationTarget (CRD not installed)']);
      const err = await rejectionOf(exportCluster(fakeLister({ [`${base}/clustersecretstores`]: [] })));
      expect(err.message).to.match(/^cannot list secretstores: /);
    });

    it('with --include-synced leaves out synced Secrets that are credentials: store Secrets and ReplicationTarget kubeconfigs', async () => {
      const synced = (namespace: string, name: string) => ({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace, labels: { 'secretsync.io/managed': 'true' } },
        type: 'Opaque',
        data: { k: 'dg==' },
      });
      const store = {
        metadata: { name: 'local', namespace: 'team-a' },
        spec: { provider: { local: { path: '/x', masterKeySecretRef: { name: 'mk' } } } },
      };
      const target = { metadata: { name: 'dr' }, spec: { kubeconfigSecretRef: { name: 'dr-kc' }, stores: {} } };
      const client = fakeLister({
        [`${base}/clustersecretstores`]: [],
        [`${base}/secretstores`]: [store],
        [`${base}/replicationtargets`]: [target],
        [`${base}/managedsecrets`]: [],
        '/api/v1/secrets': [synced('ops', 'dr-kc'), synced('team-a', 'db'), synced('team-a', 'mk')],
      });
      const result = await exportCluster(client, { includeSynced: true, operatorNamespace: 'ops' });
      expect(result.payload.syncedSecrets?.map((s) => `${s.namespace}/${s.name}`)).to.deep.equal(['team-a/db']);
      expect(result.contents.syncedSecrets).to.equal(1);
      expect(result.skipped).to.deep.equal([
        'Secret ops/dr-kc (the kubeconfig of ReplicationTarget dr; backups hold no credentials)',
        'Secret team-a/mk (credentials of SecretStore team-a/local; backups hold no credentials)',
      ]);
      // A kubeconfig Secret of the same name in another namespace is not the target's: kept.
      const elsewhere = await exportCluster(client, { includeSynced: true, operatorNamespace: 'secretsync-system' });
      expect(elsewhere.payload.syncedSecrets?.map((s) => `${s.namespace}/${s.name}`)).to.deep.equal([
        'ops/dr-kc',
        'team-a/db',
      ]);
    });

    it('with --include-synced lists only Secrets labelled secretsync.io/managed=true', async () => {
      const seen: { path: string; query: unknown }[] = [];
      const client = {
        async list<T>(path: string, query?: unknown): Promise<KubeList<T>> {
          seen.push({ path, query });
          return { metadata: {}, items: [] };
        },
      };
      const result = await exportCluster(client, { includeSynced: true });
      expect(result.contents.syncedSecrets).to.equal(0);
      expect(seen.at(-1)).to.deep.equal({
        path: '/api/v1/secrets',
        query: { labelSelector: 'secretsync.io/managed=true' },
      });
    });
  });
});
