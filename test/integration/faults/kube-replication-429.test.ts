// A DR cluster that answers 429 "storage is (re)initializing" with Retry-After,
// as a real API server does while a CRD's storage starts: the replicator must
// wait as told within the pass and report the target Replicated, not
// ClusterUnreachable followed by a full retry delay. Only a 429 that persists
// is reported, and then the next pass comes after Retry-After. The DR cluster
// is the real control plane behind an HTTPS proxy that injects the answers;
// the target selects nothing, so the DR side (the same cluster) is only read.
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { API_VERSION, LABEL_REPLICATED_BY, type ReplicationTarget } from '../../../src/api/types.js';
import type { KubeClient } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { Replicator } from '../../../src/replication/replicator.js';
import { HttpFaultProxy, statusAnswer, waitFor, type ProxiedRequest } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';
import { OPERATOR_NAMESPACE, adminClient, ensureNamespace } from '../operator.js';

const G = `/apis/${API_VERSION}`;
const RETRY_DELAY_MS = 60_000;
const storageInitialising = statusAnswer(429, 'TooManyRequests', { 'retry-after': '1' });

describe('Replication to a DR cluster that answers 429 while its storage initialises', function () {
  this.timeout(120_000);
  const id = uniqueName('r429').slice(5);
  const kubeconfigSecret = `dr-429-kubeconfig-${id}`;
  let proxy: HttpFaultProxy;
  let admin: KubeClient;
  let replicator: Replicator | undefined;
  let metrics: Metrics;
  const targets: string[] = [];

  /** The DR-side list of this target's copies of ClusterSecretStores. */
  const isCopyList = (target: string) => (r: ProxiedRequest) =>
    r.method === 'GET' &&
    r.path === `${G}/clustersecretstores` &&
    (r.query.get('labelSelector') ?? '').includes(`${LABEL_REPLICATED_BY}=${target}`);

  async function createTarget(name: string): Promise<number> {
    targets.push(name);
    await admin.request('POST', `${G}/replicationtargets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ReplicationTarget',
        metadata: { name },
        spec: {
          kubeconfigSecretRef: { name: kubeconfigSecret },
          clusterStores: { selector: { matchLabels: { 'selects-nothing': id } } },
          interval: '10m',
        },
      },
    });
    return Date.now();
  }

  const readyOf = async (name: string) =>
    (await admin.get<ReplicationTarget>(`${G}/replicationtargets/${name}`)).status?.conditions?.find(
      (c) => c.type === 'Ready',
    );

  const waitReady = (name: string, status: 'True' | 'False', reason: string, timeoutMs: number) =>
    waitFor(
      `ReplicationTarget ${name} Ready=${status} (${reason})`,
      async () => {
        const ready = await readyOf(name);
        return ready?.status === status && ready.reason === reason ? ready : undefined;
      },
      timeoutMs,
      100,
    );

  before(async () => {
    const cluster = sharedCluster();
    admin = adminClient(cluster);
    await ensureNamespace(admin, OPERATOR_NAMESPACE);
    proxy = await HttpFaultProxy.inFrontOf(cluster);
    await admin.request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: kubeconfigSecret },
        stringData: { kubeconfig: proxy.kubeConfig(cluster).exportConfig() },
      },
    });
    metrics = new Metrics({ defaultMetrics: false });
    const quiet = new Writable({ write: (_chunk, _enc, cb) => cb() });
    replicator = new Replicator({
      kubeConfig: cluster.kubeConfig(),
      logger: createLogger('error', quiet),
      metrics,
      clusterName: `fault-${id}`,
      operatorNamespace: OPERATOR_NAMESPACE,
      namespaces: [],
      // Long, so that a pass that fails on the 429 shows: the next would come only after a minute.
      retryDelayMs: RETRY_DELAY_MS,
      drRequestTimeoutMs: 15_000,
    });
    replicator.start();
  });

  after(async () => {
    await replicator?.stop();
    for (const name of targets) await admin.request('DELETE', `${G}/replicationtargets/${name}`).catch(() => undefined);
    await admin
      .request('DELETE', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${kubeconfigSecret}`)
      .catch(() => undefined);
    await proxy?.stop();
    admin?.close();
  });

  it('waits out a 429 within the pass and reports the target Replicated', async () => {
    const name = `dr-429-${id}`;
    let left = 2;
    proxy.inject = (r) => (isCopyList(name)(r) && left-- > 0 ? storageInitialising : undefined);
    const created = await createTarget(name);
    await waitReady(name, 'True', 'Replicated', 20_000);
    const tookMs = Date.now() - created;
    const lists = proxy.seen(isCopyList(name));
    // Two 429s, then the list that succeeds; a later pass (another trigger on a busy machine) may list again.
    expect(lists.map((r) => r.injected).slice(0, 3)).to.deep.equal([true, true, false]);
    for (const i of [1, 2]) expect((lists[i]?.at ?? 0) - (lists[i - 1]?.at ?? 0)).to.be.at.least(990);
    expect(await metrics.registry.metrics()).to.not.match(
      new RegExp(`secretsync_replication_failures_total\\{target="${name}"`),
    );
    console.log(`      first replication through two 429s: Ready=True ${tookMs} ms after the target was created`);
    expect(tookMs).to.be.below(10_000);
  });

  it('reports a 429 that persists as ClusterUnreachable, and tries again after Retry-After, not the retry delay', async () => {
    const name = `dr-429-persists-${id}`;
    let throttling = true;
    proxy.inject = (r) => (throttling && isCopyList(name)(r) ? storageInitialising : undefined);
    await createTarget(name);
    const down = await waitReady(name, 'False', 'ClusterUnreachable', 30_000);
    expect(down.message).to.match(/is not ready to serve \(HTTP 429 TooManyRequests, retry after 1s\)/);
    // One pass: at most the client's attempts, about a second apart as the server asked.
    const firstPass = proxy.seen(isCopyList(name));
    expect(firstPass.length).to.be.within(2, 5);
    throttling = false;
    const healed = Date.now();
    await waitReady(name, 'True', 'Replicated', 15_000);
    expect(Date.now() - healed).to.be.below(RETRY_DELAY_MS / 4);
  });
});
