// The real kube-apiserver process stopped (SIGSTOP) and resumed (SIGCONT): its
// port still accepts connections but nothing answers, the way a wedged or
// swapping server looks. Requests must end within their deadline, the client
// must make a bounded number of connections during the pause (counted by a
// TCP proxy in front), and the informer must converge once the server is back.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { DeadlineError } from '../../../src/api/errors.js';
import { KubeClient, type KubeObject } from '../../../src/kube/client.js';
import { Informer } from '../../../src/kube/informer.js';
import { TcpFaultProxy, waitFor, type TestCluster } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';
import { adminClient, ensureNamespace } from '../operator.js';
import { Ticker, settle, tickOf } from './kube-helpers.js';

const REQUEST_TIMEOUT_MS = 2_000;
const IDLE_TIMEOUT_MS = 1_500;
const PAUSE_MS = 8_000;

/** The pid of the cluster's kube-apiserver process (found by its command line). */
function apiServerPid(cluster: TestCluster): number {
  for (const pid of cluster.record().pids) {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (args.includes('kube-apiserver')) return pid;
  }
  throw new Error('no kube-apiserver process in the cluster');
}

describe('Kubernetes client while the API server is paused', function () {
  this.timeout(120_000);
  const ns = uniqueName('fault-paused');
  let proxy: TcpFaultProxy;
  let client: KubeClient;
  let admin: KubeClient;
  let ticker: Ticker;
  let informer: Informer<KubeObject> | undefined;
  let paused: number | undefined;
  const errors: unknown[] = [];

  before(async () => {
    const cluster = sharedCluster();
    admin = adminClient(cluster);
    await ensureNamespace(admin, ns);
    ticker = new Ticker(admin, ns);
    await ticker.create();
    proxy = await TcpFaultProxy.inFrontOf(cluster);
    client = new KubeClient(proxy.kubeConfig(cluster), {
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      connectTimeoutMs: 500,
      watchIdleTimeoutMs: IDLE_TIMEOUT_MS,
    });
  });

  after(async () => {
    // Whatever happened, the shared cluster runs again for the tests after this one.
    if (paused !== undefined) process.kill(paused, 'SIGCONT');
    await ticker?.stop();
    await informer?.stop();
    client?.close();
    await proxy?.stop();
    await admin?.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    admin?.close();
  });

  it('ends requests within the deadline, bounds its attempts during the pause, and converges after', async () => {
    informer = new Informer<KubeObject>(client, {
      path: `/api/v1/namespaces/${ns}/configmaps`,
      retryBaseDelayMs: 200,
      retryMaxDelayMs: 2_000,
      onError: (err) => errors.push(err),
      onWatchIdle: (err) => errors.push(err),
    });
    await informer.start();
    const inf = informer;
    const cached = () => tickOf(inf.get(`${ns}/${ticker.name}`));
    ticker.start(250);
    await waitFor('the informer to follow the ticker', async () => (cached() >= 4 ? true : undefined), 30_000, 50);
    await ticker.stop();

    const pid = apiServerPid(sharedCluster());
    process.kill(pid, 'SIGSTOP');
    paused = pid;
    const stopped = Date.now();

    const read = await settle(client.get(ticker.path), REQUEST_TIMEOUT_MS * 5);
    expect(read.error).to.be.instanceOf(DeadlineError);
    expect(read.elapsed).to.be.at.most(REQUEST_TIMEOUT_MS + 500);
    await waitFor(
      'the informer to notice the silent watch',
      async () => (errors.some((e) => (e as Error).name === 'WatchIdleError') ? true : undefined),
      IDLE_TIMEOUT_MS * 4,
      50,
    );

    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS - (Date.now() - stopped)));
    const during = proxy.connectionsSince(stopped);
    process.kill(pid, 'SIGCONT');
    paused = undefined;
    const resumed = Date.now();

    // A change made after the pause reaches the cache.
    const beforePause = ticker.n;
    ticker.start(250);
    await waitFor('a change after the pause', async () => (ticker.n >= beforePause + 2 ? true : undefined), 30_000, 50);
    await waitFor('the informer to converge', async () => (cached() >= ticker.n ? true : undefined), 30_000, 50);
    const convergedMs = Date.now() - resumed;
    console.log(
      `      paused: ${during} connection(s) in ${PAUSE_MS} ms of pause, ${errors.length} watch restart(s) or failure(s); ` +
        `converged ${convergedMs} ms after SIGCONT`,
    );
    expect(during).to.be.within(1, 25);
  });
});
