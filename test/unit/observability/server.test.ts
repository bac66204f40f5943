import { expect } from 'chai';
import { Metrics } from '../../../src/observability/metrics.js';
import { startObservabilityServer } from '../../../src/observability/server.js';

type Started = Awaited<ReturnType<typeof startObservabilityServer>>;

describe('observability server', () => {
  let metrics: Metrics;
  let healthy: boolean;
  let ready: boolean;
  let server: Started;
  let base: string;

  beforeEach(async () => {
    metrics = new Metrics({ defaultMetrics: false });
    healthy = true;
    ready = false;
    server = await startObservabilityServer('127.0.0.1:0', metrics, {
      healthy: () => healthy,
      ready: () => ready,
    });
    base = `http://127.0.0.1:${server.port}`;
  });

  afterEach(async () => {
    await server.close();
  });

  it('listens on a free port when asked for port 0', () => {
    expect(server.port).to.be.a('number').and.greaterThan(0);
    const address = server.server.address();
    expect(address).to.deep.include({ address: '127.0.0.1', port: server.port });
  });

  it('answers /healthz following the healthy callback', async () => {
    let res = await fetch(`${base}/healthz`);
    expect(res.status).to.equal(200);
    expect(await res.text()).to.equal('ok\n');
    healthy = false;
    res = await fetch(`${base}/healthz`);
    expect(res.status).to.equal(503);
    await res.text();
    healthy = true;
    expect((await fetch(`${base}/healthz?verbose`)).status).to.equal(200);
  });

  it('answers /readyz following the ready callback, independently of health', async () => {
    let res = await fetch(`${base}/readyz`);
    expect(res.status).to.equal(503);
    expect(await res.text()).to.equal('not ready\n');
    ready = true;
    res = await fetch(`${base}/readyz`);
    expect(res.status).to.equal(200);
    await res.text();
    healthy = false;
    expect((await fetch(`${base}/readyz`)).status).to.equal(200);
    expect((await fetch(`${base}/healthz`)).status).to.equal(503);
  });

  it('serves Prometheus text on /metrics', async () => {
    metrics.syncs.inc({ result: 'synced', reason: 'Synced' });
    metrics.syncs.inc({ result: 'synced', reason: 'Synced' });
    metrics.syncs.inc({ result: 'error', reason: 'ProviderError' });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    const body = await res.text();
    expect(body).to.include('# TYPE secretsync_syncs_total counter');
    expect(body).to.match(/^secretsync_syncs_total\{result="synced",reason="Synced"\} 2$/m);
    expect(body).to.match(/^secretsync_syncs_total\{result="error",reason="ProviderError"\} 1$/m);
  });

  it('serves only the families named by ?name= (repeatable), skipping unknown names', async () => {
    metrics.syncs.inc({ result: 'synced', reason: 'Synced' });
    for (let i = 0; i < 5; i++) metrics.lastSuccess.set({ namespace: 'ns', name: `ms-${i}` }, 1);
    const res = await fetch(
      `${base}/metrics?name=secretsync_syncs_total&name=secretsync_kube_writes_total&name=no_such_metric`,
    );
    expect(res.status).to.equal(200);
    const body = await res.text();
    expect(body).to.match(/^secretsync_syncs_total\{result="synced",reason="Synced"\} 1$/m);
    expect(body).to.include('# TYPE secretsync_kube_writes_total counter');
    expect(body).to.not.include('secretsync_managedsecret_last_success_timestamp_seconds');
    expect(body).to.not.include('no_such_metric');
    // Without the filter, every family, including the per-ManagedSecret one.
    expect(await (await fetch(`${base}/metrics`)).text()).to.include(
      'secretsync_managedsecret_last_success_timestamp_seconds{namespace="ns",name="ms-4"} 1',
    );
  });

  it('answers 404 for an unknown path', async () => {
    for (const path of ['/', '/metricsx', '/healthz/extra', '/debug/pprof']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).to.equal(404);
      await res.text();
    }
  });

  it('rejects an address without a port', async () => {
    let error: unknown;
    try {
      await startObservabilityServer('localhost', metrics, { healthy: () => true, ready: () => true });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.include('must be HOST:PORT');
  });

  it('fails to start on a port already in use', async () => {
    let error: unknown;
    try {
      await startObservabilityServer(`127.0.0.1:${server.port}`, metrics, { healthy: () => true, ready: () => true });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(Error);
    expect((error as NodeJS.ErrnoException).code).to.equal('EADDRINUSE');
  });
});

describe('Metrics', () => {
  it('registers no default process metrics when asked not to', async () => {
    const text = await new Metrics({ defaultMetrics: false }).registry.metrics();
    expect(text).to.not.include('secretsync_process_cpu');
    expect(text).to.include('secretsync_syncs_total');
  });

  describe('observeProvider', () => {
    it('counts a success and returns the value', async () => {
      const metrics = new Metrics({ defaultMetrics: false });
      const value = await metrics.observeProvider('local', 'get', async () => 42);
      expect(value).to.equal(42);
      const counts = await metrics.providerRequests.get();
      expect(counts.values).to.deep.equal([
        { value: 1, labels: { provider: 'local', operation: 'get', result: 'success' } },
      ]);
      const latency = await metrics.providerLatency.get();
      const count = latency.values.find((v) => v.metricName === 'secretsync_provider_request_duration_seconds_count');
      expect(count?.value).to.equal(1);
      expect(count?.labels).to.deep.equal({ provider: 'local', operation: 'get' });
    });

    it('counts an error and rethrows it unchanged', async () => {
      const metrics = new Metrics({ defaultMetrics: false });
      const boom = new Error('backend down');
      let caught: unknown;
      try {
        await metrics.observeProvider('local', 'list', async () => {
          throw boom;
        });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.equal(boom);
      await metrics.observeProvider('local', 'list', async () => 'ok');
      const counts = await metrics.providerRequests.get();
      expect(counts.values).to.have.deep.members([
        { value: 1, labels: { provider: 'local', operation: 'list', result: 'error' } },
        { value: 1, labels: { provider: 'local', operation: 'list', result: 'success' } },
      ]);
      const text = await metrics.registry.metrics();
      expect(text).to.match(
        /^secretsync_provider_request_duration_seconds_count\{provider="local",operation="list"\} 2$/m,
      );
    });
  });
});
