// The chart's Grafana dashboard against a real Prometheus (Debian's package)
// scraping a real operator process on the test control plane, with
// ManagedSecrets syncing, failing, rotating, restarting a Deployment and
// failing over to another region: every panel's query, taken from the
// dashboard as the chart renders it, must return data, so a renamed metric or
// label or a query that never matches fails here rather than on a user's screen.
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ensureKubeClients, PrometheusServer, waitFor, type PromSample } from '../../../tools/testenv/index.js';
import { freePort } from '../../../tools/testenv/processes.js';
import { repoRoot } from '../../../tools/testenv/paths.js';
import { installCrds } from '../crds.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import { spawnFaultOperator, type FaultOperator } from '../faults/operator-faults.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createMotoSecretsManagerStore,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  OPERATOR_NAMESPACE,
  waitForReady,
  type LocalStoreFixture,
} from '../operator.js';

const execFileAsync = promisify(execFile);

/** What a ServiceMonitor scrape of release "secretsync" would label the series with. */
const JOB = 'secretsync-metrics';
const TARGET_NAMESPACE = 'secretsync-system';
const PRIMARY = 'us-east-1';
const FAILOVER = 'us-west-2';

interface DashboardTarget {
  expr?: string;
  refId?: string;
}
interface DashboardPanel {
  type: string;
  title: string;
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  panels: DashboardPanel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
}

interface RenderedConfigMap {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels: Record<string, string> };
  data: Record<string, string>;
}

/** The ConfigMap the chart renders with metrics.dashboard.enabled. */
async function renderedConfigMap(): Promise<RenderedConfigMap> {
  const { helm } = await ensureKubeClients();
  const { stdout } = await execFileAsync(
    helm,
    [
      'template',
      'secretsync',
      join(repoRoot, 'charts', 'secretsync'),
      '--namespace',
      TARGET_NAMESPACE,
      '--show-only',
      'templates/dashboard.yaml',
      '--set',
      'metrics.dashboard.enabled=true',
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const configMap = parse(stdout) as RenderedConfigMap;
  expect(configMap.metadata.labels.grafana_dashboard).to.equal('1');
  return configMap;
}

/** Every panel with its queries, rows (collapsed or not) included. */
function panelsOf(panels: DashboardPanel[]): DashboardPanel[] {
  return panels.flatMap((p) => (p.type === 'row' ? panelsOf(p.panels ?? []) : [p]));
}

/** A query as Grafana would send it for this scrape: the dashboard's variables replaced. */
function expand(expr: string): string {
  const out = expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$namespace', TARGET_NAMESPACE)
    .replaceAll('$job', JOB);
  if (out.includes('$')) throw new Error(`a variable the test does not know in: ${expr}`);
  return out;
}

const hasNumber = (samples: PromSample[]) => samples.some((s) => !Number.isNaN(Number(s.value[1])));

describe('the Grafana dashboard, queried on a real Prometheus scraping a real operator', function () {
  this.timeout(300_000);
  const namespace = uniqueName('dash');
  const client = () => adminClient(sharedCluster());
  let fixture: LocalStoreFixture;
  let operator: FaultOperator | undefined;
  let prometheus: PrometheusServer | undefined;
  let configMap: RenderedConfigMap;
  let dashboard: Dashboard;

  before(async () => {
    configMap = await renderedConfigMap();
    dashboard = JSON.parse(configMap.data['secretsync.json'] ?? '') as Dashboard;
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    await ensureNamespace(client(), OPERATOR_NAMESPACE);

    // Local store: two ManagedSecrets that sync, one that fails, one that rotates, one that restarts a Deployment.
    fixture = await createLocalStore(client(), namespace);
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    await fixture.store.put('app/one', { v: 'one' });
    await fixture.store.put('app/two', { v: 'two' });
    await fixture.store.put('app/rot', { user: 'app', password: 'initial' });
    await fixture.store.put('app/web', { v: 'a' });
    await client().request('POST', `/apis/apps/v1/namespaces/${namespace}/deployments`, {
      body: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', labels: { app: 'web' } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'app', image: 'example.invalid/app:1' }] },
          },
        },
      },
    });

    // Secrets Manager with failover: the primary region's endpoint refuses connections, us-west-2 (moto) answers.
    const moto = sharedMoto();
    const deadPrimary = `http://127.0.0.1:${await freePort()}`;
    const sm = new SecretsManagerClient({ ...moto.clientConfig(), region: FAILOVER });
    try {
      await sm.send(new CreateSecretCommand({ Name: `${namespace}/db`, SecretString: 'from-west' }));
    } finally {
      sm.destroy();
    }
    await createMotoSecretsManagerStore(client(), namespace, 'aws', {
      region: PRIMARY,
      endpoint: deadPrimary,
      extra: {
        failover: [{ region: FAILOVER, endpoint: moto.endpoint }],
        circuitBreaker: { failureThreshold: 1, openSeconds: 300 },
        requestsPerSecond: 50,
      },
    });

    const local = (name: string, key: string, extra: Record<string, unknown> = {}) =>
      createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1s',
          data: [{ secretKey: 'v', remoteRef: { key, property: 'v' } }],
          ...extra,
        },
      });
    await local('one', 'app/one');
    await local('two', 'app/two');
    await local('broken', 'app/missing');
    await local('web', 'app/web', {
      rolloutRestart: { targets: [{ kind: 'Deployment', name: 'web' }], debounce: '200ms' },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'rotating' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1h',
        data: [{ secretKey: 'password', remoteRef: { key: 'app/rot', property: 'password' } }],
        rotation: {
          interval: '1h',
          generator: { password: { length: 24 } },
          remoteRef: { key: 'app/rot', property: 'password' },
        },
      },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'remote' },
      spec: {
        storeRef: { name: 'aws' },
        refreshInterval: '1s',
        data: [{ secretKey: 'db', remoteRef: { key: `${namespace}/db` } }],
      },
    });

    operator = spawnFaultOperator({
      kubeconfigPath: sharedCluster().kubeconfigPath,
      namespaces: [namespace],
      leaderElect: true,
      identity: 'dashboard-test',
      env: {
        // A Lease of its own: no other test's operator can be holding it.
        SECRETSYNC_LEASE_NAME: uniqueName('dash-leader'),
        SECRETSYNC_ALLOWED_ENDPOINTS: [moto.endpoint, deadPrimary].join(','),
      },
    });
    const port = await operator.port();
    prometheus = await PrometheusServer.start({
      jobs: [{ job: JOB, targets: [`127.0.0.1:${port}`], labels: { namespace: TARGET_NAMESPACE } }],
    });
  });

  after(async () => {
    await prometheus?.stop();
    await operator?.stop();
    fixture?.cleanup();
  });

  it('is a ConfigMap the API server accepts, and valid Grafana JSON with a Prometheus datasource variable', async () => {
    const { namespace: _rendered, ...metadata } = configMap.metadata;
    await client().request('POST', `/api/v1/namespaces/${namespace}/configmaps`, {
      body: { ...configMap, metadata },
    });
    const stored = await client().get<RenderedConfigMap>(
      `/api/v1/namespaces/${namespace}/configmaps/${configMap.metadata.name}`,
    );
    expect(stored.data['secretsync.json']).to.equal(configMap.data['secretsync.json']);
    expect(dashboard.schemaVersion).to.be.a('number').and.at.least(30);
    expect(dashboard.uid).to.equal('secretsync');
    const datasource = dashboard.templating.list.find((v) => v.type === 'datasource');
    expect(datasource?.query).to.equal('prometheus');
    expect(panelsOf(dashboard.panels).length).to.be.at.least(20);
    for (const p of panelsOf(dashboard.panels)) expect((p.targets ?? []).length, p.title).to.be.greaterThan(0);
  });

  it('every panel query returns data once the operator synced, failed, rotated, restarted and failed over', async () => {
    const prom = prometheus as PrometheusServer;
    // What the panels must show, made to happen first.
    await waitForReady(client(), namespace, 'one', 'True');
    await waitForReady(client(), namespace, 'broken', 'False');
    await waitForReady(client(), namespace, 'remote', 'True');
    await waitFor(
      'the first rotation',
      async () =>
        (await getManagedSecret(client(), namespace, 'rotating')).status?.rotationVersion ? true : undefined,
      60_000,
    );
    await waitForReady(client(), namespace, 'web', 'True');
    await fixture.store.put('app/web', { v: 'b' });
    await waitFor(
      'a rollout restart of Deployment web',
      async () => {
        const d = await client().get<{ spec: { template: { metadata?: { annotations?: Record<string, string> } } } }>(
          `/apis/apps/v1/namespaces/${namespace}/deployments/web`,
        );
        return d.spec.template.metadata?.annotations?.['secretsync.io/restarted-at'];
      },
      60_000,
    );

    // At least two scrapes of the operator, and it leads.
    await waitFor(
      'two scrapes and the leader Lease',
      async () => {
        // up is 1 for each successful scrape (0 for a failed one, which a loaded machine may see).
        const scrapes = await prom.query(`sum_over_time(up{job="${JOB}"}[5m])`);
        const leader = await prom.query(`max(secretsync_leader{job="${JOB}"})`);
        return Number(scrapes[0]?.value[1] ?? 0) >= 2 && leader[0]?.value[1] === '1' ? true : undefined;
      },
      60_000,
      500,
    );

    // Every target of every panel; the slowest series (a counter's second sample) get a bounded wait.
    const queries = panelsOf(dashboard.panels).flatMap((p) =>
      (p.targets ?? []).map((t) => ({ panel: p.title, expr: expand(t.expr ?? '') })),
    );
    // A query Prometheus cannot parse fails here at once, with its error, rather than as "no data" later.
    for (const q of queries)
      await prom.query(q.expr).catch((err: unknown) => expect.fail(`${q.panel}: ${String(err)}`));
    const empty = new Map(queries.map((q) => [`${q.panel}: ${q.expr}`, q.expr]));
    await waitFor(
      'data for every panel query',
      async () => {
        for (const [name, expr] of empty) if (hasNumber(await prom.query(expr))) empty.delete(name);
        return empty.size === 0 ? true : undefined;
      },
      90_000,
      1_000,
    ).catch(() => undefined);
    expect([...empty.keys()], 'panel queries without data').to.deep.equal([]);

    // The data is the scenario's, not just any: each panel's subject shows what happened.
    const series = async (expr: string) => prom.query(expand(expr));
    const byLabel = async (expr: string, label: string) =>
      new Map((await series(expr)).map((s) => [s.metric[label] ?? '', Number(s.value[1])]));
    const failed = await byLabel('max by (reason) (secretsync_managed_secrets_not_ready{job=~"$job"})', 'reason');
    const brokenReason = (await getManagedSecret(client(), namespace, 'broken')).status?.conditions?.find(
      (c) => c.type === 'Ready',
    )?.reason;
    expect(failed.get(brokenReason ?? '?'), `not Ready by reason ${brokenReason}`).to.be.at.least(1);
    const moves = await series(
      'sum by (from_region, to_region) (secretsync_provider_failovers_total{namespace=~"$namespace", job=~"$job"})',
    );
    expect(moves.map((m) => `${m.metric.from_region}->${m.metric.to_region}`)).to.include(`${PRIMARY}->${FAILOVER}`);
    const circuits = await byLabel('max by (region) (secretsync_provider_circuit_open{job=~"$job"})', 'region');
    expect(circuits.get(PRIMARY), 'the primary circuit is open').to.equal(1);
    const rotations = await byLabel('sum by (result) (secretsync_rotations_total{job=~"$job"})', 'result');
    expect(rotations.get('success')).to.be.at.least(1);
    const restarts = await byLabel('sum by (result) (secretsync_rollout_restarts_total{job=~"$job"})', 'result');
    expect(restarts.get('restarted')).to.be.at.least(1);
    const ages = await series(
      'time() - max by (exported_namespace, name) (secretsync_managedsecret_last_success_timestamp_seconds{job=~"$job"})',
    );
    expect(ages.filter((s) => s.metric.exported_namespace === namespace).map((s) => s.metric.name)).to.include.members([
      'one',
      'two',
      'remote',
    ]);
    const providers = await byLabel('sum by (provider) (secretsync_provider_requests_total{job=~"$job"})', 'provider');
    expect([...providers.keys()]).to.include.members(['local', 'awsSecretsManager']);
    // Secrets Manager requests by the region asked: refused in the primary, answered in the failover region.
    const regions = await series(
      'sum by (region, result) (secretsync_provider_requests_total{provider="awsSecretsManager", job=~"$job"})',
    );
    const byRegion = regions.map((s) => `${s.metric.region}:${s.metric.result}`);
    expect(byRegion).to.include.members([`${PRIMARY}:error`, `${FAILOVER}:success`]);
  });

  it("the dashboard's variables find this operator (Grafana's label_values queries)", async () => {
    const prom = prometheus as PrometheusServer;
    for (const v of dashboard.templating.list.filter((t) => t.type === 'query')) {
      const text = typeof v.query === 'string' ? v.query : v.query.query;
      const match = /^label_values\((.+),\s*(\w+)\)$/.exec(text);
      expect(match, `${v.name}: ${text}`).to.not.equal(null);
      const selector = (match?.[1] ?? '').replaceAll('$namespace', TARGET_NAMESPACE);
      const values = await prom.labelValues(match?.[2] ?? '', selector);
      expect(values, v.name).to.include(v.name === 'namespace' ? TARGET_NAMESPACE : JOB);
    }
  });
});
