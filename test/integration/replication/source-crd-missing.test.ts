// Replication when a source kind's CRD is missing on the primary: its list
// answers 404, and the replicator must neither copy nor delete anything in the
// DR cluster until the CRD is there. The primary is a control plane of this
// file's own with only some of our CRDs (the shared cluster keeps all of them
// for the other tests); the shared cluster is the DR side. Then the CRD is
// deleted on the primary: while it terminates its lists still answer, without
// the deleted objects, and that must not empty the DR side either.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import {
  API_VERSION,
  LABEL_REPLICATED_BY,
  LABEL_SOURCE_CLUSTER,
  type ReplicationTarget,
} from '../../../src/api/types.js';
import { isNotFound, type KubeClient, type KubeObject } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { Replicator } from '../../../src/replication/replicator.js';
import { TestCluster, sleep, waitFor } from '../../../tools/testenv/index.js';
import { applyCrds, installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import { OPERATOR_NAMESPACE, adminClient, ensureNamespace, listEvents } from '../operator.js';

const G = `/apis/${API_VERSION}`;

async function getOrUndefined<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

describe('ReplicationTarget: a source CRD missing on the primary', function () {
  this.timeout(240_000);
  const id = uniqueName('m').slice(2);
  const ns = uniqueName('repl-nocrd');
  const targetName = `dr-nocrd-${id}`;
  const clusterName = `nocrd-${id}`;
  const kubeconfigSecret = `dr-kubeconfig-${id}`;
  let primaryCluster: TestCluster;
  let replicator: Replicator | undefined;
  let metrics: Metrics;
  const logs: string[] = [];
  const primary = () => adminClient(primaryCluster);
  const drAdmin = () => adminClient(sharedCluster());
  const storePath = (name: string) => `${G}/namespaces/${ns}/secretstores/${name}`;
  const msPath = (name: string) => `${G}/namespaces/${ns}/managedsecrets/${name}`;
  const getTarget = () => getOrUndefined<ReplicationTarget>(primary(), `${G}/replicationtargets/${targetName}`);
  const readyOf = (t: ReplicationTarget | undefined) => t?.status?.conditions?.find((c) => c.type === 'Ready');

  async function waitReady(status: 'True' | 'False', reason: string, timeoutMs = 60_000) {
    return waitFor(
      `ReplicationTarget ${targetName} Ready=${status} (${reason})`,
      async () => {
        const t = await getTarget();
        const ready = readyOf(t);
        return ready?.status === status &&
          ready.reason === reason &&
          t?.status?.observedGeneration === t?.metadata.generation
          ? t
          : undefined;
      },
      timeoutMs,
      200,
    );
  }

  async function createStore(name: string): Promise<void> {
    await primary().request('POST', `${G}/namespaces/${ns}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name },
        spec: { provider: { local: { path: `/var/lib/secretsync/${name}`, masterKeySecretRef: { name: 'mk' } } } },
      },
    });
  }

  /** The DR copies of this target: kind/name of everything carrying its labels. */
  async function drCopies(): Promise<string[]> {
    const selector = `${LABEL_REPLICATED_BY}=${targetName},${LABEL_SOURCE_CLUSTER}=${clusterName}`;
    const out: string[] = [];
    for (const plural of ['secretstores', 'managedsecrets']) {
      const list = await drAdmin().list<KubeObject>(`${G}/namespaces/${ns}/${plural}`, { labelSelector: selector });
      out.push(...list.items.map((o) => `${plural}/${o.metadata.name}`));
    }
    return out.sort();
  }

  before(async function () {
    this.timeout(300_000);
    [primaryCluster] = await Promise.all([TestCluster.start({ name: 'repl-nocrd' }), installCrds(sharedCluster())]);
    // Every CRD but ManagedSecret's.
    await applyCrds(primaryCluster, (crd) => crd.spec.names.kind !== 'ManagedSecret');
    await ensureNamespace(primary(), OPERATOR_NAMESPACE);
    await ensureNamespace(primary(), ns);
    await ensureNamespace(drAdmin(), ns);
    // The DR cluster's admin kubeconfig (client certificate and CA embedded).
    await primary().request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: kubeconfigSecret },
        stringData: { kubeconfig: readFileSync(sharedCluster().kubeconfigPath, 'utf8') },
      },
    });
    await createStore('a');
    await createStore('b');
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        cb();
      },
    });
    metrics = new Metrics({ defaultMetrics: false });
    replicator = new Replicator({
      kubeConfig: primaryCluster.kubeConfig(),
      logger: createLogger('debug', sink),
      metrics,
      clusterName,
      operatorNamespace: OPERATOR_NAMESPACE,
      namespaces: [ns],
      retryDelayMs: 1_000,
      drRequestTimeoutMs: 5_000,
    });
    replicator.start();
  });

  after(async function () {
    this.timeout(120_000);
    await replicator?.stop();
    await primaryCluster?.stop();
    await drAdmin()
      .request('DELETE', `/api/v1/namespaces/${ns}`)
      .catch(() => undefined);
  });

  it('replicates the kinds whose CRDs are there while nothing asks for the missing one', async () => {
    await primary().request('POST', `${G}/replicationtargets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ReplicationTarget',
        metadata: { name: targetName },
        spec: { kubeconfigSecretRef: { name: kubeconfigSecret }, stores: { namespaces: [ns] }, interval: '5s' },
      },
    });
    const t = await waitReady('True', 'Replicated');
    expect(t.status?.objectsInSync).to.equal(2);
    expect(await drCopies()).to.deep.equal(['secretstores/a', 'secretstores/b']);
  });

  it('once the target asks for ManagedSecrets, whose CRD the primary lacks: SourceListFailed, and nothing copied or deleted', async function () {
    this.timeout(120_000);
    await primary().request('PATCH', `${G}/replicationtargets/${targetName}`, {
      body: { spec: { managedSecrets: { namespaces: [ns] } } },
      contentType: 'application/merge-patch+json',
    });
    const failed = await waitReady('False', 'SourceListFailed');
    expect(readyOf(failed)?.message)
      .to.contain(`${G}/namespaces/${ns}/managedsecrets`)
      .and.contain('nothing is copied or deleted');
    // Now the primary loses one store and gains another: a pass that ignored the failed list would delete
    // the copy of b and copy c.
    await primary().request('DELETE', storePath('b'));
    await createStore('c');
    await sleep(8_000); // several retries (every second)
    const still = await getTarget();
    expect(readyOf(still)?.reason).to.equal('SourceListFailed');
    expect(still?.status?.objectsInSync, 'unchanged since the last good pass').to.equal(2);
    expect(await drCopies()).to.deep.equal(['secretstores/a', 'secretstores/b']);
    const metricsText = await metrics.registry.metrics();
    expect(metricsText).to.match(
      new RegExp(`secretsync_replication_failures_total\\{target="${targetName}",reason="SourceListFailed"\\} [1-9]`),
    );
    const events = await listEvents(primary(), 'default');
    expect(
      events.some(
        (e) => (e.involvedObject as { name?: string }).name === targetName && e.reason === 'SourceListFailed',
      ),
    ).to.equal(true);
    expect(logs.join('\n')).to.contain('replication pass failed');
  });

  it('resumes once the CRD is installed: copies what is new and only then deletes what went on the primary', async function () {
    this.timeout(120_000);
    await applyCrds(primaryCluster, (crd) => crd.spec.names.kind === 'ManagedSecret');
    await primary().request('POST', `${G}/namespaces/${ns}/managedsecrets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        metadata: { name: 'app' },
        spec: { storeRef: { name: 'a' }, data: [{ secretKey: 'password', remoteRef: { key: 'app/db' } }] },
      },
    });
    await waitFor(
      'the DR cluster to match the primary',
      async () => {
        const copies = await drCopies();
        return JSON.stringify(copies) === JSON.stringify(['managedsecrets/app', 'secretstores/a', 'secretstores/c'])
          ? copies
          : undefined;
      },
      60_000,
      250,
    );
    const t = await waitReady('True', 'Replicated');
    expect(t.status?.objectsInSync).to.equal(3);
    const copy = await drAdmin().get<KubeObject>(msPath('app'));
    expect(copy.spec).to.deep.include({ storeRef: { kind: 'SecretStore', name: 'a' } });
  });

  it('keeps the DR copies while the CRD is being deleted on the primary (its objects going with it), and after', async function () {
    this.timeout(120_000);
    // A second ManagedSecret whose finalizer holds the CRD in Terminating: its objects are deleted (or
    // marked), yet the resource still lists, without them. Copying that state would empty the DR side.
    await primary().request('POST', `${G}/namespaces/${ns}/managedsecrets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        metadata: { name: 'hold', finalizers: ['example.com/hold'] },
        spec: { storeRef: { name: 'a' }, data: [{ secretKey: 'password', remoteRef: { key: 'app/hold' } }] },
      },
    });
    await waitFor(
      'the copy of hold',
      async () => ((await drCopies()).includes('managedsecrets/hold') ? true : undefined),
      30_000,
    );
    const before = await waitReady('True', 'Replicated');
    expect(before.status?.objectsInSync).to.equal(4);
    const res = await primaryCluster.adminRequest(
      'DELETE',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/managedsecrets.secretsync.io',
    );
    expect(res.status).to.be.oneOf([200, 202]);
    const all = ['managedsecrets/app', 'managedsecrets/hold', 'secretstores/a', 'secretstores/c'];
    const terminating = await waitFor(
      'SourceListFailed for the terminating CRD',
      async () => {
        const t = await getTarget();
        return readyOf(t)?.reason === 'SourceListFailed' && readyOf(t)?.message.includes('being deleted')
          ? t
          : undefined;
      },
      30_000,
      200,
    );
    expect(readyOf(terminating)?.message).to.contain(
      'managedsecrets.secretsync.io CRD on this cluster is being deleted',
    );
    expect(
      (await primary().list<KubeObject>(`${G}/namespaces/${ns}/managedsecrets`)).items.map((o) => o.metadata.name),
    ).to.deep.equal(['hold']);
    await sleep(5_000); // several retries
    expect(await drCopies()).to.deep.equal(all);

    // The CRD goes for good: its lists answer 404, and still nothing is deleted in the DR cluster.
    await primary().request('PATCH', msPath('hold'), {
      body: { metadata: { finalizers: null } },
      contentType: 'application/merge-patch+json',
    });
    await waitFor(
      'the CRD to be gone',
      async () =>
        (await primaryCluster.adminRequest('GET', `${G}/namespaces/${ns}/managedsecrets`)).status === 404
          ? true
          : undefined,
      30_000,
    );
    await waitFor(
      'SourceListFailed for the missing CRD',
      async () => {
        const t = await getTarget();
        const ready = readyOf(t);
        return ready?.reason === 'SourceListFailed' && !ready.message.includes('being deleted') ? t : undefined;
      },
      30_000,
      200,
    );
    await sleep(5_000);
    expect(readyOf(await getTarget())?.reason).to.equal('SourceListFailed');
    expect(await drCopies()).to.deep.equal(all);
  });
});
