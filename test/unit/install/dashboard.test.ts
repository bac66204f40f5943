// The Grafana dashboard ConfigMap as the real Helm renders it: off by default,
// labelled for the sidecar as configured, carrying dashboards/secretsync.json
// unchanged, and the JSON well-formed for Grafana (every query on the
// datasource variable, unique panel ids, panels inside the 24-column grid).
// Whether its queries return data: test/integration/observability/dashboard.test.ts.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { ensureKubeClients } from '../../../tools/testenv/index.js';
import { repoRoot } from '../../../tools/testenv/paths.js';

const execFileAsync = promisify(execFile);
const chartDir = join(repoRoot, 'charts', 'secretsync');

interface ConfigMap {
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> };
  data: Record<string, string>;
}

interface Panel {
  id: number;
  type: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { datasource?: { uid: string }; expr: string }[];
}

async function render(sets: string[]): Promise<ConfigMap[]> {
  const { helm } = await ensureKubeClients();
  const { stdout } = await execFileAsync(
    helm,
    ['template', 'rel', chartDir, '--namespace', 'ops', ...sets.flatMap((s) => ['--set', s])],
    { maxBuffer: 32 * 1024 * 1024 },
  );
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as ConfigMap | null)
    .filter((o): o is ConfigMap => o?.kind === 'ConfigMap' && o.metadata.name.endsWith('-dashboard'));
}

describe('the Grafana dashboard ConfigMap (metrics.dashboard)', function () {
  this.timeout(120_000);

  it('is not rendered by default', async () => {
    expect(await render([])).to.have.length(0);
  });

  it("carries dashboards/secretsync.json unchanged, with the sidecar's label as configured", async () => {
    const [byDefault] = await render(['metrics.dashboard.enabled=true']);
    expect(byDefault?.metadata.namespace).to.equal('ops');
    expect(byDefault?.metadata.labels.grafana_dashboard).to.equal('1');
    expect(byDefault?.metadata.labels['app.kubernetes.io/instance']).to.equal('rel');
    const file = JSON.parse(readFileSync(join(chartDir, 'dashboards', 'secretsync.json'), 'utf8')) as unknown;
    expect(JSON.parse(byDefault?.data['secretsync.json'] ?? '')).to.deep.equal(file);

    const [custom] = await render([
      'metrics.dashboard.enabled=true',
      'metrics.dashboard.namespace=monitoring',
      'metrics.dashboard.label=grafana.example/dashboard',
      'metrics.dashboard.labelValue=secretsync',
      'metrics.dashboard.labels.team=platform',
      'metrics.dashboard.annotations.grafana_folder=Operators',
    ]);
    expect(custom?.metadata.namespace).to.equal('monitoring');
    expect(custom?.metadata.labels['grafana.example/dashboard']).to.equal('secretsync');
    expect(custom?.metadata.labels.grafana_dashboard).to.equal(undefined);
    expect(custom?.metadata.labels.team).to.equal('platform');
    expect(custom?.metadata.annotations).to.deep.equal({ grafana_folder: 'Operators' });
  });

  it("the README's monitoring command renders the ServiceMonitor, the PrometheusRule and the dashboard", async () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('#### Scraping, alerts and the Grafana dashboard'));
    const block = /```bash\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const sets = [...block.matchAll(/--set (\S+)/g)].map((m) => m[1] as string);
    expect(sets).to.include('metrics.dashboard.enabled=true');
    const { helm } = await ensureKubeClients();
    const { stdout } = await execFileAsync(
      helm,
      [
        'template',
        'secretsync',
        chartDir,
        '--namespace',
        'secretsync-system',
        // As on a cluster that has the Prometheus Operator's CRDs (either form the chart may check).
        ...[
          'monitoring.coreos.com/v1',
          'monitoring.coreos.com/v1/ServiceMonitor',
          'monitoring.coreos.com/v1/PrometheusRule',
        ].flatMap((api) => ['--api-versions', api]),
        ...sets.flatMap((s) => ['--set', s]),
      ],
      { maxBuffer: 32 * 1024 * 1024 },
    );
    const kinds = parseAllDocuments(stdout).map((d) => (d.toJS() as { kind?: string } | null)?.kind);
    expect(kinds).to.include.members(['ServiceMonitor', 'PrometheusRule', 'ConfigMap']);
  });

  it('is Grafana JSON whose every query uses the datasource variable, with unique ids inside the grid', () => {
    const dashboard = JSON.parse(readFileSync(join(chartDir, 'dashboards', 'secretsync.json'), 'utf8')) as {
      schemaVersion: number;
      title: string;
      uid: string;
      panels: Panel[];
      templating: { list: { name: string; type: string; query: unknown }[] };
    };
    expect(dashboard.schemaVersion).to.be.a('number');
    expect(dashboard.title).to.equal('secretsync');
    const variables = dashboard.templating.list;
    expect(variables.find((v) => v.name === 'datasource')).to.include({ type: 'datasource', query: 'prometheus' });
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size, 'panel ids').to.equal(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, `panel ${p.id} fits the 24 columns`).to.be.at.most(24);
      if (p.type === 'row') continue;
      expect(p.datasource, `panel ${p.id}`).to.deep.equal({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets ?? []) {
        expect(t.datasource?.uid, `panel ${p.id}`).to.equal('${datasource}');
        // Every series is this release's: the namespace and job variables select it.
        expect(t.expr, `panel ${p.id}`).to.match(/namespace=~"\$namespace", job=~"\$job"/);
      }
    }
  });
});
