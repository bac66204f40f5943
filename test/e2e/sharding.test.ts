// Active-active sharding as the chart installs it: `helm install --set
// sharding.enabled=true --set replicaCount=2`, then two operators run exactly as
// the Deployment runs them (the image's files, the container's args, nothing but
// the ServiceAccount's token). The two claim half the shards each through
// Leases (the chart's RBAC must allow that and no more), every ManagedSecret is
// labelled with its shard and synced, and a replica that stops hands its shards
// to the other, which then serves changes of the ManagedSecrets it took over.
// There is no kubelet: the replicas are local processes.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { API_VERSION, type ManagedSecret } from '../../src/api/types.js';
import { KubeClient, type KubeObject } from '../../src/kube/client.js';
import { readShardHolders } from '../../src/sharding/lease-holders.js';
import { LABEL_SHARD, shardOf } from '../../src/sharding/ownership.js';
import { TestCluster, waitFor } from '../../tools/testenv/index.js';
import {
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getSecret,
  waitForSecretData,
  type LocalStoreFixture,
} from '../integration/operator.js';
import {
  canI,
  kubeClients,
  mintToken,
  mustRun,
  readmeCommand,
  startOperatorLikeDeployment,
  tempDir,
  tokenKubeconfig,
  type OperatorProcess,
} from './helpers.js';
import { runtimeImage, type AssembledImage } from './image.js';

const RELEASE_NAMESPACE = 'secretsync-system';
const NS = 'team-a';
const SHARDS = 16;
const COUNT = 40;
const PODS = ['secretsync-6f7d9c8b5-aaaaa', 'secretsync-6f7d9c8b5-bbbbb'] as const;

describe('sharding from the chart: two active replicas (helm install, real tokens)', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let admin: KubeClient;
  let image: AssembledImage;
  let fixture: LocalStoreFixture | undefined;
  let tokenConfig: string;
  const operators: OperatorProcess[] = [];
  const names = Array.from({ length: COUNT }, (_, i) => `app-${String(i).padStart(2, '0')}`);

  /** Holder of each shard Lease that names one. */
  const shardHolders = () => readShardHolders(admin, RELEASE_NAMESPACE, { shardCount: SHARDS });
  const countBy = (holders: Map<number, string>) => {
    const counts: Record<string, number> = {};
    for (const h of holders.values()) counts[h] = (counts[h] ?? 0) + 1;
    return counts;
  };

  before(async function () {
    this.timeout(600_000);
    [cluster, image] = await Promise.all([TestCluster.start({ name: 'e2e-sharding' }), runtimeImage()]);
    admin = new KubeClient(cluster.kubeConfig());
    await ensureNamespace(admin, NS);
  });

  afterEach(function () {
    // A failed step shows what the replicas said (their log files go with the test's temporary directories).
    if (this.currentTest?.state === 'failed')
      for (const [i, op] of operators.entries())
        process.stderr.write(`--- ${PODS[i]} ---\n${op.logs().split('\n').slice(-60).join('\n')}\n`);
  });

  after(async function () {
    this.timeout(60_000);
    for (const op of operators) await op.stop();
    fixture?.cleanup();
    admin?.close();
    await cluster?.stop();
  });

  it('installs with sharding.enabled and two replicas; the ServiceAccount may keep shard Leases in its namespace only', async () => {
    const { helm } = await kubeClients();
    const [, ...args] = readmeCommand('helm install');
    await mustRun(helm, [
      ...args,
      '--set',
      'sharding.enabled=true',
      '--set',
      'replicaCount=2',
      // The test's local stores live under the temporary directory (a namespace's directory of it).
      '--set',
      `tenancy.localStoreRoot=${tmpdir()}`,
      '--kubeconfig',
      cluster.kubeconfigPath,
    ]);
    await waitFor(
      'managedsecrets to be served',
      async () =>
        (await cluster.adminRequest('GET', `/apis/${API_VERSION}/managedsecrets`)).status === 200 ? true : undefined,
      30_000,
      100,
    );
    const token = await mintToken(cluster, RELEASE_NAMESPACE, 'secretsync');
    tokenConfig = tokenKubeconfig(cluster, token, tempDir('token'));
    for (const verb of ['get', 'list', 'create', 'update', 'delete'])
      expect(await canI(tokenConfig, verb, 'leases.coordination.k8s.io', RELEASE_NAMESPACE), verb).to.equal(true);
    expect(await canI(tokenConfig, 'create', 'leases.coordination.k8s.io', 'kube-system')).to.equal(false);
    expect(await canI(tokenConfig, 'delete', 'leases.coordination.k8s.io', NS)).to.equal(false);
    // The change relay: its one ConfigMap by name (create cannot be restricted by name), nothing else of ConfigMaps.
    for (const verb of ['get', 'list', 'watch', 'update'])
      expect(await canI(tokenConfig, verb, 'configmaps/secretsync-changes', RELEASE_NAMESPACE), verb).to.equal(true);
    expect(await canI(tokenConfig, 'create', 'configmaps', RELEASE_NAMESPACE)).to.equal(true);
    expect(await canI(tokenConfig, 'get', 'configmaps/other', RELEASE_NAMESPACE)).to.equal(false);
    expect(await canI(tokenConfig, 'update', 'configmaps/secretsync-changes', NS)).to.equal(false);
  });

  it('splits the shards 8/8 between the replicas, labels every ManagedSecret and syncs each once', async () => {
    fixture = await createLocalStore(admin, NS);
    for (const name of names) await fixture.store.put(`app/${name}`, { password: `v1-${name}` });
    await createSecretStore(admin, NS, 'local', fixture.dir);
    for (const name of names)
      await createManagedSecret(admin, NS, {
        metadata: { name },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1h',
          data: [{ secretKey: 'password', remoteRef: { key: `app/${name}`, property: 'password' } }],
        },
      });
    const deployment = await admin.get<Parameters<typeof startOperatorLikeDeployment>[1]>(
      `/apis/apps/v1/namespaces/${RELEASE_NAMESPACE}/deployments/secretsync`,
    );
    expect(deployment.spec.template.spec.containers[0]?.args).to.include('--sharding=true');
    for (const pod of PODS) operators.push(await startOperatorLikeDeployment(image, deployment, tokenConfig, pod));

    const holders = await waitFor(
      'the shards to be split 8/8',
      async () => {
        const h = await shardHolders();
        const counts = countBy(h);
        return h.size === SHARDS && counts[PODS[0]] === 8 && counts[PODS[1]] === 8 ? h : undefined;
      },
      30_000,
      200,
    );
    for (const name of names) {
      const secret = await waitForSecretData(admin, NS, name, (d) => d.password === `v1-${name}`, 30_000);
      const shard = shardOf(NS, name, SHARDS);
      // The Secret carries its ManagedSecret's shard; the ManagedSecret was labelled by a replica.
      expect(secret.metadata.labels?.[LABEL_SHARD]).to.equal(String(shard));
      const ms = await admin.get<ManagedSecret & KubeObject>(
        `/apis/${API_VERSION}/namespaces/${NS}/managedsecrets/${name}`,
      );
      expect(ms.metadata.labels?.[LABEL_SHARD]).to.equal(String(shard));
    }
    // Each replica watches the change relay with its real token (a refused watch is logged and retried).
    for (const op of operators) expect(op.logs()).to.not.include('could not watch the change relay');
    // Both replicas hold shards that have ManagedSecrets: neither idles while the other does all the work.
    const used = new Set(names.map((n) => holders.get(shardOf(NS, n, SHARDS))));
    expect([...used].sort()).to.deep.equal([...PODS].sort());
  });

  it('hands every shard to the other replica when one stops, which then serves the ManagedSecrets it took over', async () => {
    const [leaving, staying] = [operators[0]!, operators[1]!];
    const before = await shardHolders();
    const movedName = names.find((n) => before.get(shardOf(NS, n, SHARDS)) === PODS[0]);
    expect(movedName, 'a ManagedSecret in a shard of the stopping replica').to.not.equal(undefined);
    const versionBefore = (await getSecret(admin, NS, movedName!))?.metadata.resourceVersion;
    const stopped = Date.now();
    await leaving.stop();
    expect(leaving.exitCode()).to.equal(0);
    await waitFor(
      'the staying replica to hold all 16 shards',
      async () => {
        const counts = countBy(await shardHolders());
        return counts[PODS[1]] === SHARDS ? true : undefined;
      },
      20_000,
      100,
    );
    // A graceful stop releases the Leases: no waiting for them to expire (15 s).
    expect(Date.now() - stopped).to.be.below(12_000);
    // The takeover itself writes nothing: everything it took over is in sync.
    expect((await getSecret(admin, NS, movedName!))?.metadata.resourceVersion).to.equal(versionBefore);

    const fresh = `v2-${randomBytes(4).toString('hex')}`;
    await fixture!.store.put(`app/${movedName!}`, { password: fresh });
    await admin.request('PATCH', `/apis/${API_VERSION}/namespaces/${NS}/managedsecrets/${movedName!}`, {
      body: { metadata: { annotations: { 'secretsync.io/force-sync': fresh } } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(admin, NS, movedName!, (d) => d.password === fresh, 20_000);
    expect(staying.exitCode()).to.equal(null);
  });
});
