// The scenario registry, and one run: scenarios in order, a table, a JSON file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { changeLatencyScenario } from '../scenarios/change-latency.js';
import { coldSyncScenario } from '../scenarios/cold-sync.js';
import { eventsScenario } from '../scenarios/events.js';
import { fanInScenario, kmsScenario } from '../scenarios/aws.js';
import { faultsScenario } from '../scenarios/faults.js';
import { hostileScenario } from '../scenarios/hostile.js';
import { noisyNeighbourScenario } from '../scenarios/noisy-neighbour.js';
import { rawBaselineScenario } from '../scenarios/raw-baseline.js';
import { rawGoScenario } from '../scenarios/raw-go.js';
import { restartScenario } from '../scenarios/restart.js';
import { scaleScenario } from '../scenarios/scale.js';
import { eventsSqsScenario } from '../scenarios/events-sqs.js';
import { steadyStateScenario } from '../scenarios/steady-state.js';
import { unrelatedSecretsScenario } from '../scenarios/unrelated-secrets.js';
import { vaultScenario } from '../scenarios/vault.js';
import { ibmScenario } from '../scenarios/ibm.js';
import { shardsScenario } from '../scenarios/shards.js';
import { REPO_ROOT, chartNodeOptions, type BenchContext, type Figures } from './context.js';

export const SCENARIOS: Record<string, (ctx: BenchContext, n: number) => Promise<Figures>> = {
  'cold-sync': coldSyncScenario,
  'raw-baseline': rawBaselineScenario,
  'raw-go': rawGoScenario,
  'steady-state': steadyStateScenario,
  restart: restartScenario,
  'unrelated-secrets': unrelatedSecretsScenario,
  'change-latency': changeLatencyScenario,
  kms: kmsScenario,
  'fan-in': fanInScenario,
  faults: faultsScenario,
  'noisy-neighbour': noisyNeighbourScenario,
  hostile: hostileScenario,
  events: eventsScenario,
  vault: vaultScenario,
  ibm: ibmScenario,
  'events-sqs': eventsSqsScenario,
  shards: shardsScenario,
  scale: scaleScenario,
};

/**
 * Scenarios run only when named: `faults` starts a control plane of its own,
 * freezes and kills parts of it, and takes minutes; `events-sqs` (the SQS part
 * of issue 15's events measurements) runs two operators and watches each at
 * rest for a minute; `raw-go` (issue 18's client-go and HTTP/2 baselines)
 * creates N Secrets 10 times over; `shards` runs four operators at once, kills
 * one and pauses another past its Lease (over a minute of waiting for Leases);
 * `scale` repeats cold-sync, restart, unrelated-secrets and change-latency on
 * one population (meant for N = 50,000); a plain `npm run bench` (and the CI
 * smoke run) leaves them out.
 */
export const OPT_IN_SCENARIOS: ReadonlySet<string> = new Set(['faults', 'events-sqs', 'raw-go', 'shards', 'scale']);
/** What `npm run bench` runs without `--scenario`. */
export const DEFAULT_SCENARIOS: readonly string[] = Object.keys(SCENARIOS).filter((s) => !OPT_IN_SCENARIOS.has(s));

export interface ScenarioResult {
  scenario: string;
  n: number;
  ok: boolean;
  error?: string;
  seconds: number;
  /** The machine's 1-minute load average when the scenario started and ended (other work on a shared machine shows here). */
  load1m: { start: number; end: number };
  figures: Figures;
}

export interface RunReport {
  startedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  kubernetes: string;
  n: number;
  options: BenchContext['options'];
  /** NODE_OPTIONS the operator processes ran with (the chart's default unless set). */
  operatorNodeOptions: string;
  results: ScenarioResult[];
}

/** Runs the named scenarios in order; a failing scenario is recorded and the next one runs. */
export async function runScenarios(ctx: BenchContext, names: string[], n: number): Promise<RunReport> {
  const report: RunReport = {
    startedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    kubernetes: ctx.cluster.version,
    n,
    options: ctx.options,
    operatorNodeOptions: process.env.NODE_OPTIONS ?? chartNodeOptions(),
    results: [],
  };
  for (const name of names) {
    const scenario = SCENARIOS[name];
    if (!scenario) throw new Error(`unknown scenario "${name}" (known: ${Object.keys(SCENARIOS).join(', ')})`);
    const started = Date.now();
    const loadStart = Math.round((loadavg()[0] ?? 0) * 100) / 100;
    const load1m = () => ({ start: loadStart, end: Math.round((loadavg()[0] ?? 0) * 100) / 100 });
    try {
      const figures = await scenario(ctx, n);
      ctx.results.set(name, figures);
      report.results.push({
        scenario: name,
        n,
        ok: true,
        seconds: (Date.now() - started) / 1000,
        load1m: load1m(),
        figures,
      });
    } catch (err) {
      ctx.log(`${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      report.results.push({
        scenario: name,
        n,
        ok: false,
        error: err instanceof Error ? err.message : String(err),
        seconds: (Date.now() - started) / 1000,
        load1m: load1m(),
        figures: {},
      });
    }
  }
  return report;
}

/** The report as a text table: one block per scenario, scalar figures only. */
export function formatReport(report: RunReport): string {
  const lines = [
    `secretsync bench: N=${report.n}, ${report.machine.cpus} CPUs (${report.machine.cpuModel}), Node ${report.machine.node}, Kubernetes ${report.kubernetes}`,
    '',
  ];
  for (const r of report.results) {
    lines.push(
      `${r.scenario} (${r.ok ? `${r.seconds.toFixed(0)} s` : `FAILED: ${r.error ?? ''}`}; load ${r.load1m.start} → ${r.load1m.end})`,
    );
    for (const [k, v] of Object.entries(r.figures)) {
      if (typeof v === 'object') continue;
      lines.push(`  ${k.padEnd(32)} ${String(v)}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

export function writeReport(report: RunReport, dir = join(REPO_ROOT, 'bench/results')): string {
  mkdirSync(dir, { recursive: true });
  const names = report.results.map((r) => r.scenario);
  const label =
    names.length === DEFAULT_SCENARIOS.length && DEFAULT_SCENARIOS.every((s) => names.includes(s))
      ? 'all'
      : names.join('+');
  const file = join(dir, `${report.startedAt.replace(/[:.]/g, '-')}-n${report.n}-${label}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
