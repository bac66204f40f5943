import { expect } from 'chai';
import { MAX_ENDPOINT_LABELS, Metrics } from '../../../src/observability/metrics.js';
import { rejectionOf } from '../helpers/index.js';

describe('Metrics', () => {
  it('counts the retries the AWS SDK made before an answer or an error', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    await metrics.observeProvider('awsSecretsManager', 'GetSecretValue', async () => ({ $metadata: { attempts: 3 } }));
    await metrics.observeProvider('awsSecretsManager', 'GetSecretValue', async () => ({ $metadata: { attempts: 1 } }));
    const err = Object.assign(new Error('ThrottlingException'), { $metadata: { attempts: 2 } });
    await rejectionOf(metrics.observeProvider('awsSecretsManager', 'GetSecretValue', async () => Promise.reject(err)));
    const retries = (await metrics.providerRetries.get()).values;
    expect(retries).to.have.length(1);
    expect(retries[0]?.value).to.equal(3);
    expect(retries[0]?.labels).to.deep.equal({ provider: 'awsSecretsManager', operation: 'GetSecretValue' });
  });

  it('labels backend requests with the region asked when the caller names one, and with none otherwise', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    await metrics.observeProvider('awsSecretsManager', 'GetSecretValue', async () => ({}), 'us-west-2');
    await rejectionOf(
      metrics.observeProvider(
        'awsSecretsManager',
        'GetSecretValue',
        async () => Promise.reject(new Error('x')),
        'us-east-1',
      ),
    );
    await metrics.observeProvider('local', 'getValue', async () => ({}));
    const text = await metrics.registry.metrics();
    expect(text).to.contain(
      'secretsync_provider_requests_total{provider="awsSecretsManager",operation="GetSecretValue",result="success",region="us-west-2"} 1',
    );
    expect(text).to.contain(
      'secretsync_provider_requests_total{provider="awsSecretsManager",operation="GetSecretValue",result="error",region="us-east-1"} 1',
    );
    expect(text).to.contain(
      'secretsync_provider_requests_total{provider="local",operation="getValue",result="success"} 1',
    );
    expect(text).to.contain(
      'secretsync_provider_request_duration_seconds_count{provider="awsSecretsManager",operation="GetSecretValue",region="us-west-2"} 1',
    );
  });

  it('labels IBM requests with the serving instance (endpoint), bounded: hosts past the cap count as "other"', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const primary = 'a.us-south.secrets-manager.appdomain.cloud';
    const secondary = 'b.eu-de.secrets-manager.appdomain.cloud';
    await metrics.observeProvider('ibmSecretsManager', 'GetSecret', async () => ({}), 'us-south', primary);
    await metrics.observeProvider('ibmSecretsManager', 'GetSecret', async () => ({}), 'eu-de', secondary);
    await metrics.observeProvider('ibmSecretsManager', 'GetSecret', async () => ({}), 'eu-de', secondary);
    const text = await metrics.registry.metrics();
    expect(text).to.contain(
      `secretsync_provider_requests_total{provider="ibmSecretsManager",operation="GetSecret",result="success",region="us-south",endpoint="${primary}"} 1`,
    );
    expect(text).to.contain(
      `secretsync_provider_requests_total{provider="ibmSecretsManager",operation="GetSecret",result="success",region="eu-de",endpoint="${secondary}"} 2`,
    );
    for (let i = 0; i < MAX_ENDPOINT_LABELS + 10; i++)
      await metrics.observeProvider('ibmSecretsManager', 'GetSecret', async () => ({}), 'x', `host-${i}`);
    const endpoints = new Set((await metrics.providerRequests.get()).values.map((v) => v.labels.endpoint));
    expect(endpoints.size).to.equal(MAX_ENDPOINT_LABELS + 1);
    expect(endpoints.has('other')).to.equal(true);
    expect(endpoints.has(primary)).to.equal(true);
    // A host seen before the cap keeps its own series.
    expect(metrics.endpointLabel(secondary)).to.equal(secondary);
  });

  it('reports per-store budgets from its source at scrape time', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.budgetSource = () => [{ store: 'SecretStore a/sm', waiting: 4, used: 17 }];
    const text = await metrics.registry.metrics();
    expect(text).to.contain('secretsync_store_budget_waiting{store="SecretStore a/sm"} 4');
    expect(text).to.contain('secretsync_store_budget_used_total{store="SecretStore a/sm"} 17');
  });

  it('reports open circuits from its source at scrape time and counts failovers by region', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.circuitSource = () => [
      { provider: 'awsSecretsManager', store: 'SecretStore a/sm', region: 'us-east-1', endpoint: '', open: true },
      { provider: 'awsSecretsManager', store: 'SecretStore a/sm', region: 'us-west-2', endpoint: '', open: false },
      // Two endpoints in one region: two series, told apart by the endpoint host.
      {
        provider: 'awsKms',
        store: 'SecretStore a/sm',
        region: 'us-east-1',
        endpoint: 'vpce-1.example:443',
        open: true,
      },
      { provider: 'awsKms', store: 'SecretStore a/sm', region: 'us-east-1', endpoint: '', open: false },
    ];
    metrics.failovers.inc({
      provider: 'awsSecretsManager',
      store: 'SecretStore a/sm',
      from_region: 'us-east-1',
      to_region: 'us-west-2',
    });
    const text = await metrics.registry.metrics();
    expect(text).to.contain(
      'secretsync_provider_circuit_open{provider="awsSecretsManager",store="SecretStore a/sm",region="us-east-1",endpoint=""} 1',
    );
    expect(text).to.contain(
      'secretsync_provider_circuit_open{provider="awsSecretsManager",store="SecretStore a/sm",region="us-west-2",endpoint=""} 0',
    );
    expect(text).to.contain(
      'secretsync_provider_circuit_open{provider="awsKms",store="SecretStore a/sm",region="us-east-1",endpoint="vpce-1.example:443"} 1',
    );
    expect(text).to.contain(
      'secretsync_provider_circuit_open{provider="awsKms",store="SecretStore a/sm",region="us-east-1",endpoint=""} 0',
    );
    expect(text).to.contain(
      'secretsync_provider_failovers_total{provider="awsSecretsManager",store="SecretStore a/sm",from_region="us-east-1",to_region="us-west-2"} 1',
    );
  });
});
