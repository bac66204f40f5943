// A network path to the real API server that dies without a word: a TCP proxy
// that keeps every connection open and delivers nothing (a half-open link).
// Requests must fail within their deadline, the informer must notice its
// silent watch within the idle timeout and come back once the path does, and
// the client must not hammer the server meanwhile.
import { expect } from 'chai';
import { DeadlineError } from '../../../src/api/errors.js';
import { KubeClient, type KubeObject } from '../../../src/kube/client.js';
import { Informer } from '../../../src/kube/informer.js';
import { TcpFaultProxy, waitFor } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';
import { adminClient, ensureNamespace } from '../operator.js';
import { Ticker, settle, tickOf } from './kube-helpers.js';

const REQUEST_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT_MS = 500;
const IDLE_TIMEOUT_MS = 1_500;

describe('Kubernetes client behind a path that goes silent', function () {
  this.timeout(120_000);
  const ns = uniqueName('fault-blackhole');
  let proxy: TcpFaultProxy;
  let client: KubeClient;
  let admin: KubeClient;
  let ticker: Ticker;
  let informer: Informer<KubeObject> | undefined;
  const errors: { at: number; err: unknown }[] = [];

  before(async () => {
    const cluster = sharedCluster();
    admin = adminClient(cluster);
    await ensureNamespace(admin, ns);
    ticker = new Ticker(admin, ns);
    await ticker.create();
    proxy = await TcpFaultProxy.inFrontOf(cluster);
    client = new KubeClient(proxy.kubeConfig(cluster), {
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      watchIdleTimeoutMs: IDLE_TIMEOUT_MS,
    });
  });

  after(async () => {
    await ticker?.stop();
    await informer?.stop();
    client?.close();
    await proxy?.stop();
    await admin?.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    admin?.close();
  });

  it('fails requests within the deadline, restarts the silent watch, stays bounded, and recovers', async () => {
    informer = new Informer<KubeObject>(client, {
      path: `/api/v1/namespaces/${ns}/configmaps`,
      retryBaseDelayMs: 200,
      retryMaxDelayMs: 1_000,
      onError: (err) => errors.push({ at: Date.now(), err }),
      onWatchIdle: (err) => errors.push({ at: Date.now(), err }),
    });
    await informer.start();
    const inf = informer;
    const cached = () => tickOf(inf.get(`${ns}/${ticker.name}`));
    // A steady change keeps a healthy watch busy: any idle restart would be a false alarm.
    ticker.start(250);
    await waitFor('the informer to follow the ticker', async () => (cached() >= 8 ? true : undefined), 30_000, 50);
    expect(errors, 'no watch restarts while events flow').to.deep.equal([]);

    proxy.setMode('blackhole');
    const cut = Date.now();

    // A request on the dead path: a DeadlineError within the request deadline, never a hang.
    const read = await settle(client.get(ticker.path), REQUEST_TIMEOUT_MS * 5);
    expect(read.error).to.be.instanceOf(DeadlineError);
    expect((read.error as Error).message).to.equal(`GET ${ticker.path}: no answer within 2s`);
    expect(read.elapsed).to.be.at.most(REQUEST_TIMEOUT_MS + 500);

    // The silent watch is noticed within the idle timeout (plus scheduling slack).
    const noticed = await waitFor(
      'the informer to report its silent watch',
      async () => errors.find((e) => (e.err as Error).name === 'WatchIdleError'),
      IDLE_TIMEOUT_MS * 4,
      50,
    );
    expect(noticed.at - cut).to.be.at.most(IDLE_TIMEOUT_MS + 1_000);

    // Some seconds of outage: the informer keeps trying, with back-off.
    await new Promise((resolve) => setTimeout(resolve, 6_000 - (Date.now() - cut)));
    const during = proxy.connectionsSince(cut);
    const outage = Date.now() - cut;
    proxy.setMode('forward');
    const healed = Date.now();

    // Convergence: the cache catches up with the ticker, which kept changing throughout.
    await waitFor(
      'the informer to catch up after the path is back',
      async () => (cached() >= ticker.n ? true : undefined),
      30_000,
      50,
    );
    const recoveryMs = Date.now() - healed;
    expect((await client.get<KubeObject>(ticker.path)).metadata.name).to.equal(ticker.name);
    console.log(
      `      blackhole: ${during} connection(s) in ${outage} ms of outage, ${errors.length} watch restart(s) or failure(s); ` +
        `the cache caught up ${recoveryMs} ms after the path came back`,
    );
    // With back-off, a handful of attempts; a client retrying in a loop would open hundreds.
    expect(during).to.be.within(1, 20);
  });
});
