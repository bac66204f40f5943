// Replication to a DR cluster: two real control planes side by side (the
// shared one as the primary, a second one started here as the DR cluster) and
// a second moto server as the secondary region.
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { expect } from 'chai';
import { Writable } from 'node:stream';
import {
  ANNOTATION_SOURCE_CLUSTER,
  ANNOTATION_SOURCE_GENERATION,
  ANNOTATION_SOURCE_UID,
  API_VERSION,
  type Condition,
  type ReplicationTarget,
} from '../../../src/api/types.js';
import { KubeClient, isNotFound, type KubeObject } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { RECEIVER_CREDENTIAL_RULES, RECEIVER_RULES } from '../../../src/replication/receiver.js';
import { Replicator } from '../../../src/replication/replicator.js';
import { MotoServer, TestCluster, sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  OPERATOR_NAMESPACE,
  adminClient,
  ensureNamespace,
  listEvents,
  spawnOperatorProcess,
  startOperator,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';

const G = `/apis/${API_VERSION}`;
const CLUSTER_NAME = 'primary-east';

interface RunningReplicator {
  replicator: Replicator;
  metrics: Metrics;
  logs: string[];
}

function startReplicator(primary: TestCluster, namespaces: string[], kubeConfig = primary.kubeConfig()) {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const replicator = new Replicator({
    kubeConfig,
    logger: createLogger('debug', sink),
    metrics,
    clusterName: CLUSTER_NAME,
    operatorNamespace: OPERATOR_NAMESPACE,
    namespaces,
    retryDelayMs: 1_000,
    drRequestTimeoutMs: 5_000,
  });
  replicator.start();
  return { replicator, metrics, logs } satisfies RunningReplicator;
}

/** A ServiceAccount bound to a ClusterRole with `rules`, and a token for it. */
async function identityWith(
  cluster: TestCluster,
  name: string,
  rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[],
): Promise<string> {
  const admin = adminClient(cluster);
  await ensureNamespace(admin, OPERATOR_NAMESPACE);
  await admin.request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts`, {
    body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } },
  });
  await admin.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules },
  });
  await admin.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    body: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: OPERATOR_NAMESPACE }],
    },
  });
  const res = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts/${name}/token`,
    { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 7200 } } },
  );
  return res.status.token;
}

async function getOrUndefined<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

const readyOf = (t: ReplicationTarget | undefined): Condition | undefined =>
  t?.status?.conditions?.find((c) => c.type === 'Ready');

describe('ReplicationTarget: replication to a DR cluster', function () {
  this.timeout(240_000);
  const id = uniqueName('r').slice(2);
  const ns = uniqueName('repl');
  /** A namespace that exists on the primary only (created late): its copies cannot be written. */
  const nsLate = uniqueName('repl-late');
  const targetName = `dr-${id}`;
  const badTargetName = `dr-bad-${id}`;
  const cssName = `css-dr-${id}`;
  const cssOther = `css-nodr-${id}`;
  const kubeconfigSecret = `dr-kubeconfig-${id}`;
  const secretKeyValue = `sk-${uniqueName('v')}`;
  const names = { ss: 'ps-store', ss2: 'late-store', ms: 'app-db' };
  let dr: TestCluster;
  let moto2: MotoServer;
  let run: RunningReplicator | undefined;
  let drOperator: RunningOperator | undefined;
  const primary = () => adminClient(sharedCluster());
  const drAdmin = () => adminClient(dr);

  const awsStoreProvider = (block: 'awsSecretsManager' | 'awsParameterStore', namespaced: boolean) => ({
    [block]: {
      region: sharedMoto().region,
      endpoint: sharedMoto().endpoint,
      auth: {
        secretRef: {
          accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id', ...(namespaced ? {} : { namespace: ns }) },
          secretAccessKeySecretRef: {
            name: 'aws-creds',
            key: 'secret-access-key',
            ...(namespaced ? {} : { namespace: ns }),
          },
        },
      },
      ...(block === 'awsParameterStore' ? { decrypt: { kms: { region: sharedMoto().region } } } : {}),
    },
  });

  const getTarget = (name = targetName) =>
    getOrUndefined<ReplicationTarget>(primary(), `${G}/replicationtargets/${name}`);

  async function waitReady(status: 'True' | 'False', reason: string, name = targetName, timeoutMs = 60_000) {
    return waitFor(
      `ReplicationTarget ${name} Ready=${status} (${reason})`,
      async () => {
        const t = await getTarget(name);
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

  before(async function () {
    this.timeout(300_000);
    [dr, moto2] = await Promise.all([
      TestCluster.start({ name: 'dr' }),
      MotoServer.start({ region: 'us-west-2' }),
      installCrds(sharedCluster()),
    ]).then(([c, m]) => [c, m] as const);
    // The DR identity: exactly the receiver rules the chart documents (with credentials, as includeCredentials is used).
    const token = await identityWith(dr, 'replication-receiver', [...RECEIVER_RULES, ...RECEIVER_CREDENTIAL_RULES]);
    await ensureNamespace(drAdmin(), ns);
    await ensureNamespace(primary(), OPERATOR_NAMESPACE);
    await ensureNamespace(primary(), ns);
    await primary().request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: kubeconfigSecret },
        stringData: { kubeconfig: dr.kubeconfigYamlForToken(token, 'replication-receiver') },
      },
    });
    await primary().request('POST', `/api/v1/namespaces/${ns}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'aws-creds' },
        stringData: { 'access-key-id': 'testing', 'secret-access-key': secretKeyValue },
      },
    });
    const css = (name: string, labels: Record<string, string>) => ({
      apiVersion: API_VERSION,
      kind: 'ClusterSecretStore',
      metadata: { name, labels },
      spec: { provider: awsStoreProvider('awsSecretsManager', false) },
    });
    await primary().request('POST', `${G}/clustersecretstores`, { body: css(cssName, { dr: id }) });
    await primary().request('POST', `${G}/clustersecretstores`, { body: css(cssOther, { other: id }) });
    await primary().request('POST', `${G}/namespaces/${ns}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: names.ss },
        spec: { provider: awsStoreProvider('awsParameterStore', true) },
      },
    });
    await primary().request('POST', `${G}/namespaces/${ns}/managedsecrets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        metadata: { name: names.ms, labels: { dr: 'yes' } },
        spec: {
          storeRef: { kind: 'ClusterSecretStore', name: cssName },
          data: [{ secretKey: 'password', remoteRef: { key: `app/${id}`, property: 'password' } }],
          refreshInterval: '5s',
        },
      },
    });
  });

  after(async function () {
    this.timeout(120_000);
    await drOperator?.stop();
    await run?.replicator.stop();
    for (const name of [targetName, badTargetName])
      await primary()
        .request('DELETE', `${G}/replicationtargets/${name}`)
        .catch(() => undefined);
    for (const name of [cssName, cssOther])
      await primary()
        .request('DELETE', `${G}/clustersecretstores/${name}`)
        .catch(() => undefined);
    await Promise.all([dr?.stop(), moto2?.stop()]);
  });

  const drPath = (kind: 'clustersecretstores' | 'secretstores' | 'managedsecrets', name: string, namespace?: string) =>
    `${G}${namespace ? `/namespaces/${namespace}` : ''}/${kind}/${name}`;

  it('reports a missing kubeconfig Secret, a refused identity and CRDs missing in the DR cluster, then copies once they are installed', async () => {
    run = startReplicator(sharedCluster(), [ns, nsLate]);
    await primary().request('POST', `${G}/replicationtargets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ReplicationTarget',
        metadata: { name: badTargetName },
        spec: { kubeconfigSecretRef: { name: `missing-${id}` }, clusterStores: {} },
      },
    });
    const bad = await waitReady('False', 'InvalidKubeconfig', badTargetName);
    expect(readyOf(bad)?.message).to.contain(`${OPERATOR_NAMESPACE}/missing-${id}`);
    // A kubeconfig the DR cluster does not accept: Unauthorized, and the message names no token.
    await primary().request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `bogus-${id}` },
        stringData: { kubeconfig: dr.kubeconfigYamlForToken(`bogus-token-${id}`) },
      },
    });
    await primary().request('PATCH', `${G}/replicationtargets/${badTargetName}`, {
      body: { spec: { kubeconfigSecretRef: { name: `bogus-${id}` } } },
      contentType: 'application/merge-patch+json',
    });
    const unauthorized = await waitReady('False', 'Unauthorized', badTargetName);
    expect(readyOf(unauthorized)?.message).to.contain('HTTP 401').and.not.contain(`bogus-token-${id}`);
    await primary().request('DELETE', `${G}/replicationtargets/${badTargetName}`);

    await primary().request('POST', `${G}/replicationtargets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ReplicationTarget',
        metadata: { name: targetName },
        spec: {
          kubeconfigSecretRef: { name: kubeconfigSecret },
          clusterStores: { selector: { matchLabels: { dr: id } } },
          stores: { namespaces: [ns, nsLate] },
          managedSecrets: { namespaces: [ns], selector: { matchLabels: { dr: 'yes' } } },
          includeCredentials: true,
          overrides: { aws: { region: moto2.region, endpoint: moto2.endpoint } },
          interval: '5s',
        },
      },
    });
    const missing = await waitReady('False', 'CRDsMissing');
    expect(readyOf(missing)?.message).to.contain('install the secretsync CRDs');
    await installCrds(dr);
    await waitReady('True', 'Replicated', targetName, 90_000);
  });

  it('copies the selected stores with the region and endpoint overrides applied, and nothing else', async () => {
    const t = await waitReady('True', 'Replicated');
    // The selected CSS, the SecretStore, the ManagedSecret and the one credential Secret (shared by both stores).
    expect(t.status?.objectsInSync).to.equal(4);
    expect(t.status?.lastReplicationTime).to.be.a('string');
    expect(t.status?.lagSeconds).to.be.lessThan(30);

    const source = await primary().get<KubeObject>(`${G}/clustersecretstores/${cssName}`);
    const copy = await drAdmin().get<KubeObject & { spec: { provider: Record<string, Record<string, unknown>> } }>(
      drPath('clustersecretstores', cssName),
    );
    expect(copy.spec.provider.awsSecretsManager?.region).to.equal('us-west-2');
    expect(copy.spec.provider.awsSecretsManager?.endpoint).to.equal(moto2.endpoint);
    expect(copy.spec.provider.awsSecretsManager?.auth).to.deep.equal(
      (source.spec as { provider: Record<string, Record<string, unknown>> }).provider.awsSecretsManager?.auth,
    );
    expect(copy.metadata.annotations?.[ANNOTATION_SOURCE_CLUSTER]).to.equal(CLUSTER_NAME);
    expect(copy.metadata.annotations?.[ANNOTATION_SOURCE_UID]).to.equal(source.metadata.uid);
    expect(copy.metadata.annotations?.[ANNOTATION_SOURCE_GENERATION]).to.equal(String(source.metadata.generation));
    expect(copy.metadata.labels?.dr).to.equal(id);
    expect(copy.status, 'status is never copied').to.equal(undefined);
    expect(((copy.metadata.managedFields ?? []) as { manager: string }[]).map((f) => f.manager)).to.include(
      'secretsync-replication',
    );

    const ss = await drAdmin().get<KubeObject & { spec: { provider: Record<string, Record<string, unknown>> } }>(
      drPath('secretstores', names.ss, ns),
    );
    expect(ss.spec.provider.awsParameterStore?.region).to.equal('us-west-2');
    expect(ss.spec.provider.awsParameterStore?.endpoint).to.equal(moto2.endpoint);
    // decrypt.kms sets its own region: overridden too.
    expect(ss.spec.provider.awsParameterStore?.decrypt).to.deep.equal({ kms: { region: 'us-west-2' } });

    const ms = await getOrUndefined<KubeObject>(drAdmin(), drPath('managedsecrets', names.ms, ns));
    expect(ms?.spec).to.deep.include({ storeRef: { kind: 'ClusterSecretStore', name: cssName } });
    const creds = await getOrUndefined<KubeObject & { data: Record<string, string> }>(
      drAdmin(),
      `/api/v1/namespaces/${ns}/secrets/aws-creds`,
    );
    expect(Buffer.from(creds?.data['secret-access-key'] ?? '', 'base64').toString()).to.equal(secretKeyValue);

    // Outside the selector: not copied.
    expect(await getOrUndefined(drAdmin(), drPath('clustersecretstores', cssOther))).to.equal(undefined);
  });

  it('follows a change and a deletion on the primary, and drops a store that leaves the selector', async () => {
    await primary().request('PATCH', `${G}/clustersecretstores/${cssName}`, {
      body: { spec: { provider: { awsSecretsManager: { requestsPerSecond: 42 } } } },
      contentType: 'application/merge-patch+json',
    });
    const changed = await waitFor(
      'the DR copy to follow the change',
      async () => {
        const c = await drAdmin().get<KubeObject & { spec: { provider: Record<string, Record<string, unknown>> } }>(
          drPath('clustersecretstores', cssName),
        );
        return c.spec.provider.awsSecretsManager?.requestsPerSecond === 42 ? c : undefined;
      },
      30_000,
    );
    expect(changed.metadata.annotations?.[ANNOTATION_SOURCE_GENERATION]).to.equal('2');
    expect(changed.spec.provider.awsSecretsManager?.region, 'the override still applies').to.equal('us-west-2');

    // A second store, then delete it on the primary: it goes in the DR cluster too.
    await primary().request('POST', `${G}/namespaces/${ns}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: names.ss2 },
        spec: { provider: awsStoreProvider('awsParameterStore', true) },
      },
    });
    await waitFor(
      'the new store in the DR cluster',
      () => getOrUndefined(drAdmin(), drPath('secretstores', names.ss2, ns)),
      30_000,
    );
    await primary().request('DELETE', `${G}/namespaces/${ns}/secretstores/${names.ss2}`);
    await waitFor(
      'the deleted store to go from the DR cluster',
      async () => ((await getOrUndefined(drAdmin(), drPath('secretstores', names.ss2, ns))) ? undefined : true),
      30_000,
    );

    // The unselected store gets the label: copied; loses it again: pruned.
    await primary().request('PATCH', `${G}/clustersecretstores/${cssOther}`, {
      body: { metadata: { labels: { dr: id } } },
      contentType: 'application/merge-patch+json',
    });
    await waitFor(
      'the newly selected store in the DR cluster',
      () => getOrUndefined(drAdmin(), drPath('clustersecretstores', cssOther)),
      30_000,
    );
    await primary().request('PATCH', `${G}/clustersecretstores/${cssOther}`, {
      body: { metadata: { labels: { dr: null } } },
      contentType: 'application/merge-patch+json',
    });
    await waitFor(
      'the no longer selected store to go from the DR cluster',
      async () => ((await getOrUndefined(drAdmin(), drPath('clustersecretstores', cssOther))) ? undefined : true),
      30_000,
    );
    const events = await listEvents(primary(), 'default');
    const ours = events.filter((e) => (e.involvedObject as { name?: string }).name === targetName);
    expect(ours.map((e) => e.reason)).to.include('Replicated');
    expect(JSON.stringify(ours)).to.not.contain(secretKeyValue);
  });

  it('says the DR cluster is unreachable while it is down, and catches up when it is back', async function () {
    this.timeout(300_000);
    await dr.pause();
    const down = await waitReady('False', 'ClusterUnreachable', targetName, 60_000);
    expect(readyOf(down)?.message).to.contain(dr.server);
    // A change while the DR cluster is down.
    await primary().request('POST', `${G}/namespaces/${ns}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: names.ss2 },
        spec: { provider: awsStoreProvider('awsParameterStore', true) },
      },
    });
    await sleep(3_000);
    const lagging = await getTarget();
    expect(lagging?.status?.lagSeconds ?? 0).to.be.greaterThan(0);
    const metricsText = await run!.metrics.registry.metrics();
    expect(metricsText).to.match(
      new RegExp(`secretsync_replication_failures_total\\{target="${targetName}",reason="ClusterUnreachable"\\} [1-9]`),
    );
    expect(metricsText).to.match(new RegExp(`secretsync_replication_lag_seconds\\{target="${targetName}"\\} [1-9]`));
    const events = await listEvents(primary(), 'default');
    expect(
      events.some(
        (e) => (e.involvedObject as { name?: string }).name === targetName && e.reason === 'ClusterUnreachable',
      ),
    ).to.equal(true);

    await dr.restart();
    await waitFor(
      'the store created during the outage in the DR cluster',
      () => getOrUndefined(drAdmin(), drPath('secretstores', names.ss2, ns)),
      120_000,
      500,
    );
    const back = await waitReady('True', 'Replicated', targetName, 60_000);
    expect(back.status?.objectsInSync).to.equal(5);
  });

  it('never deletes in the DR cluster while a list on the primary fails (RBAC denies listing SecretStores)', async function () {
    this.timeout(180_000);
    await run?.replicator.stop();
    run = undefined;
    // A primary identity that may do everything replication needs except list SecretStores.
    const token = await identityWith(sharedCluster(), `replicator-no-ss-${id}`, [
      {
        apiGroups: ['secretsync.io'],
        resources: ['replicationtargets', 'clustersecretstores', 'managedsecrets'],
        verbs: ['get', 'list', 'watch'],
      },
      { apiGroups: ['secretsync.io'], resources: ['replicationtargets/status'], verbs: ['get', 'patch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
    // Deleted on the primary: a replicator that pruned on a failed list would delete the copies.
    await primary().request('DELETE', `${G}/namespaces/${ns}/secretstores/${names.ss2}`);
    await primary().request('DELETE', `${G}/namespaces/${ns}/secretstores/${names.ss}`);
    const restricted = startReplicator(sharedCluster(), [ns], sharedCluster().kubeConfigForToken(token));
    try {
      const failed = await waitReady('False', 'SourceListFailed', targetName, 60_000);
      expect(readyOf(failed)?.message).to.contain('secretstores');
      await sleep(12_000); // more than two retries
      expect(readyOf(await getTarget())?.reason).to.equal('SourceListFailed');
      for (const name of [names.ss, names.ss2])
        expect(await getOrUndefined(drAdmin(), drPath('secretstores', name, ns)), name).to.not.equal(undefined);
      expect(await getOrUndefined(drAdmin(), drPath('clustersecretstores', cssName))).to.not.equal(undefined);
      expect(await getOrUndefined(drAdmin(), drPath('managedsecrets', names.ms, ns))).to.not.equal(undefined);
    } finally {
      await restricted.replicator.stop();
    }
    // With a working list again, the deletions follow.
    run = startReplicator(sharedCluster(), [ns, nsLate]);
    await waitFor(
      'the stores deleted on the primary to go from the DR cluster',
      async () => {
        for (const name of [names.ss, names.ss2])
          if (await getOrUndefined(drAdmin(), drPath('secretstores', name, ns))) return undefined;
        return true;
      },
      60_000,
    );
    expect(await getOrUndefined(drAdmin(), drPath('clustersecretstores', cssName))).to.not.equal(undefined);
  });

  it('lets the operator in the DR cluster sync ManagedSecrets from the secondary region', async () => {
    const value = (where: string) => JSON.stringify({ password: `${where}-${id}` });
    await new SecretsManagerClient(sharedMoto().clientConfig()).send(
      new CreateSecretCommand({ Name: `app/${id}`, SecretString: value('primary') }),
    );
    await new SecretsManagerClient(moto2.clientConfig()).send(
      new CreateSecretCommand({ Name: `app/${id}`, SecretString: value('secondary') }),
    );
    drOperator = await startOperator(dr, { namespaces: [ns] });
    await waitForSecretData(drAdmin(), ns, names.ms, (d) => d.password === `secondary-${id}`, 60_000);
    expect(JSON.stringify(run?.logs ?? [])).to.not.contain(secretKeyValue);
    const t = await getTarget();
    expect(JSON.stringify(t?.status)).to.not.contain(secretKeyValue);
  });
  it('reports ApplyFailed, naming the copy, when its namespace is missing in the DR cluster, and recovers', async () => {
    await ensureNamespace(primary(), nsLate);
    await primary().request('POST', `${G}/namespaces/${nsLate}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: 'late' },
        spec: { provider: awsStoreProvider('awsParameterStore', true) },
      },
    });
    const failed = await waitReady('False', 'ApplyFailed');
    expect(readyOf(failed)?.message).to.contain(`SecretStore/${nsLate}/late`);
    // The others are still in sync: a failed copy does not stop the rest, nor delete anything.
    expect(await getOrUndefined(drAdmin(), drPath('clustersecretstores', cssName))).to.not.equal(undefined);
    await ensureNamespace(drAdmin(), nsLate);
    await waitReady('True', 'Replicated', targetName, 30_000);
    expect(await getOrUndefined(drAdmin(), drPath('secretstores', 'late', nsLate))).to.not.equal(undefined);
  });

  it('runs from `secretsync run` on the leader, naming the source cluster after --cluster-name', async function () {
    this.timeout(180_000);
    await run?.replicator.stop();
    run = undefined;
    const proc = spawnOperatorProcess(
      sharedCluster(),
      [ns],
      ['--cluster-name', 'proc-east', '--lease-name', `repl-${id}`],
    );
    try {
      await waitFor(
        'the DR copies to name the cluster given by --cluster-name',
        async () => {
          const c = await drAdmin().get<KubeObject>(drPath('clustersecretstores', cssName));
          return c.metadata.annotations?.[ANNOTATION_SOURCE_CLUSTER] === 'proc-east' ? c : undefined;
        },
        120_000,
        500,
      );
      expect(proc.lines.join('\n')).to.contain('replication started');
    } finally {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        proc.child.kill('SIGTERM');
        await new Promise((resolve) => proc.child.once('exit', resolve));
      }
    }
  });
});
