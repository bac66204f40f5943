// Throttling and unavailability answers in front of the real API server (an
// HTTPS proxy that answers some requests itself): the client waits as long as
// Retry-After says and then succeeds, repeats a create only when the answer
// proves the server did not act (429), and never repeats one after a 503.
import { expect } from 'chai';
import { KubeApiError, KubeClient, isNotFound, type KubeObject } from '../../../src/kube/client.js';
import { HttpFaultProxy, statusAnswer, type ProxiedRequest } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';
import { adminClient, ensureNamespace } from '../operator.js';
import { settle } from './kube-helpers.js';

describe('Kubernetes client against a throttling API server', function () {
  this.timeout(60_000);
  const ns = uniqueName('fault-throttled');
  let proxy: HttpFaultProxy;
  let client: KubeClient;
  let admin: KubeClient;

  const configMaps = `/api/v1/namespaces/${ns}/configmaps`;
  const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } });

  /** Answers the first `times` requests matching with `answer`, then forwards. */
  function injectFirst(times: number, match: (r: ProxiedRequest) => boolean, answer: ReturnType<typeof statusAnswer>) {
    let left = times;
    proxy.inject = (r) => {
      if (left > 0 && match(r)) {
        left--;
        return answer;
      }
      return undefined;
    };
  }

  before(async () => {
    const cluster = sharedCluster();
    admin = adminClient(cluster);
    await ensureNamespace(admin, ns);
    await admin.request('POST', configMaps, { body: configMap('present') });
    proxy = await HttpFaultProxy.inFrontOf(cluster);
    client = new KubeClient(proxy.kubeConfig(cluster), { requestTimeoutMs: 10_000 });
  });

  afterEach(() => {
    proxy.inject = undefined;
  });

  after(async () => {
    client?.close();
    await proxy?.stop();
    await admin?.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    admin?.close();
  });

  it('retries a read after the Retry-After of each 429, then succeeds', async () => {
    const path = `${configMaps}/present`;
    const isRead = (r: ProxiedRequest) => r.method === 'GET' && r.path === path;
    injectFirst(2, isRead, statusAnswer(429, 'TooManyRequests', { 'retry-after': '1' }));
    const since = proxy.requests.length;
    const { value, error } = await settle(client.get<KubeObject>(path), 15_000);
    expect(error).to.equal(undefined);
    expect(value?.metadata.name).to.equal('present');
    const seen = proxy.requests.slice(since).filter(isRead);
    expect(seen.map((r) => r.injected)).to.deep.equal([true, true, false]);
    for (const i of [1, 2]) expect((seen[i]?.at ?? 0) - (seen[i - 1]?.at ?? 0)).to.be.at.least(990);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const path = `${configMaps}/present`;
    const isRead = (r: ProxiedRequest) => r.method === 'GET' && r.path === path;
    // HTTP dates have whole seconds: two seconds ahead is at least one second of waiting.
    const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2_000).toUTCString();
    injectFirst(1, isRead, statusAnswer(429, 'TooManyRequests', { 'retry-after': at }));
    const since = proxy.requests.length;
    await client.get(path);
    const seen = proxy.requests.slice(since).filter(isRead);
    expect(seen).to.have.length(2);
    expect(seen[1]?.at ?? 0).to.be.at.least(Date.parse(at) - 10);
  });

  it('repeats a create refused with 429, which creates the object once', async () => {
    const isCreate = (r: ProxiedRequest) => r.method === 'POST' && r.path === configMaps;
    injectFirst(1, isCreate, statusAnswer(429, 'TooManyRequests', { 'retry-after': '1' }));
    const since = proxy.requests.length;
    const created = await client.request<KubeObject>('POST', configMaps, { body: configMap('after-429') });
    expect(created.metadata.name).to.equal('after-429');
    expect(
      proxy.requests
        .slice(since)
        .filter(isCreate)
        .map((r) => r.injected),
    ).to.deep.equal([true, false]);
    expect((await admin.get<KubeObject>(`${configMaps}/after-429`)).metadata.uid).to.be.a('string');
  });

  it('does not repeat a create after a 503, and keeps the classification and Retry-After', async () => {
    const isCreate = (r: ProxiedRequest) => r.method === 'POST' && r.path === configMaps;
    injectFirst(5, isCreate, statusAnswer(503, 'ServiceUnavailable', { 'retry-after': '2' }));
    const since = proxy.requests.length;
    const { error } = await settle(client.request('POST', configMaps, { body: configMap('after-503') }), 15_000);
    expect(error).to.be.instanceOf(KubeApiError);
    expect((error as KubeApiError).status).to.equal(503);
    expect((error as KubeApiError).retry).to.equal('transient');
    expect((error as KubeApiError).retryAfterMs).to.equal(2_000);
    expect(proxy.requests.slice(since).filter(isCreate)).to.have.length(1);
    const missing = await settle(admin.get(`${configMaps}/after-503`), 10_000);
    expect(isNotFound(missing.error)).to.equal(true);
  });

  it('keeps trying a throttled read no longer than its deadline and attempt limit', async () => {
    const path = `${configMaps}/present`;
    const isRead = (r: ProxiedRequest) => r.method === 'GET' && r.path === path;
    injectFirst(1_000, isRead, statusAnswer(429, 'TooManyRequests', { 'retry-after': '1' }));
    const since = proxy.requests.length;
    const { error, elapsed } = await settle(client.get(path, undefined, { timeoutMs: 2_500 }), 15_000);
    expect((error as KubeApiError).status).to.equal(429);
    expect(elapsed).to.be.below(2_600);
    // 0 s, ~1 s, ~2 s: the next would pass the deadline, so it gives up at once.
    expect(proxy.requests.slice(since).filter(isRead)).to.have.length(3);
  });
});
