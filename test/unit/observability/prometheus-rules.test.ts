// The chart's PrometheusRule, unit-tested by promtool (Debian's prometheus
// package): the rule groups come from rendering the chart with the real Helm
// binary, so what is tested is what a user installs, and promtool/alerts.test.yaml
// makes each alert fire on a synthetic bad series and stay quiet on a healthy one.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { ensureKubeClients, ensurePrometheus } from '../../../tools/testenv/index.js';
import { repoRoot } from '../../../tools/testenv/paths.js';

const execFileAsync = promisify(execFile);
/**
 * The Prometheus Operator's API as a cluster that has its CRDs announces it
 * (group/version and group/version/kind, whichever form the chart checks for).
 */
const MONITORING_APIS = [
  'monitoring.coreos.com/v1',
  'monitoring.coreos.com/v1/PrometheusRule',
  'monitoring.coreos.com/v1/ServiceMonitor',
];
const TEST_FILE = join(repoRoot, 'test', 'unit', 'observability', 'promtool', 'alerts.test.yaml');

interface RenderedRule {
  spec: { groups: { name: string; rules: { alert?: string; expr: string }[] }[] };
}

/**
 * The PrometheusRule as Helm renders it: release "secretsync" in namespace
 * "secretsync-system" (the job and namespace the test series carry), on a
 * cluster that announces the monitoring.coreos.com API.
 */
async function renderRule(extraSets: string[] = []): Promise<RenderedRule> {
  const { helm } = await ensureKubeClients();
  const { stdout } = await execFileAsync(
    helm,
    [
      'template',
      'secretsync',
      join(repoRoot, 'charts', 'secretsync'),
      '--namespace',
      'secretsync-system',
      ...MONITORING_APIS.flatMap((api) => ['--api-versions', api]),
      '--show-only',
      'templates/prometheusrule.yaml',
      '--set',
      'metrics.prometheusRule.enabled=true',
      ...extraSets.flatMap((s) => ['--set', s]),
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return parse(stdout) as RenderedRule;
}

/** Runs `promtool test rules` on the test file with these groups as its rules.yaml. */
async function promtoolTest(rule: RenderedRule): Promise<{ ok: boolean; output: string }> {
  const { promtool } = await ensurePrometheus();
  const dir = mkdtempSync(join(tmpdir(), 'secretsync-promtool-'));
  try {
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
    copyFileSync(TEST_FILE, join(dir, 'alerts.test.yaml'));
    try {
      const { stdout, stderr } = await execFileAsync(promtool, ['test', 'rules', join(dir, 'alerts.test.yaml')], {
        timeout: 60_000,
      });
      return { ok: true, output: stdout + stderr };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}${e.stdout || e.stderr ? '' : e.message}` };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the chart PrometheusRule under promtool test rules', function () {
  // The first run may unpack Helm and Debian's prometheus package into the cache.
  this.timeout(180_000);

  it('renders every alert the chart documents, and promtool accepts them as rules', async () => {
    const rule = await renderRule();
    const alerts = rule.spec.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(alerts).to.have.members([
      'SecretsyncSyncsFailing',
      'SecretsyncStoreNotReady',
      'SecretsyncNoLeader',
      'SecretsyncManagedSecretsOverdue',
      'SecretsyncManagedSecretStale',
      'SecretsyncReplicationLagging',
    ]);
    const { promtool } = await ensurePrometheus();
    const dir = mkdtempSync(join(tmpdir(), 'secretsync-promtool-'));
    try {
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
      const { stdout } = await execFileAsync(promtool, ['check', 'rules', join(dir, 'rules.yaml')], {
        timeout: 60_000,
      });
      expect(stdout).to.include('SUCCESS: 6 rules found');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fires each alert on a bad series after its `for`, and stays quiet on healthy series and other releases', async () => {
    const result = await promtoolTest(await renderRule());
    expect(result.ok, result.output).to.equal(true);
    expect(result.output).to.include('SUCCESS');
  });

  it('fails when a rule changes under the tests (a longer `for`, a higher threshold)', async () => {
    // The same tests against rules a user tuned differently must fail: the test file pins what the defaults do.
    for (const set of [
      'metrics.prometheusRule.alerts.noLeader.for=30m',
      'metrics.prometheusRule.alerts.managedSecretStale.thresholdSeconds=86400',
    ]) {
      const result = await promtoolTest(await renderRule([set]));
      expect(result.ok, `promtool passed with ${set}`).to.equal(false);
      expect(result.output).to.include('FAILED');
    }
  });
});
