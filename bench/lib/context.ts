// What every scenario gets: the control plane, an admin client, moto on demand,
// the operator as a separate process, and counters read from real /metrics.
import { copyFileSync, existsSync, readFileSync, readdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { KubeClient, isAlreadyExists } from '../../src/kube/client.js';
import type { MotoServer, TestCluster } from '../../tools/testenv/index.js';
import { releaseTempDir, spawnLogged, trackTempDir, type SpawnedProcess } from '../../tools/testenv/processes.js';
import { parsePrometheus, sleep, type Sample } from './util.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const OPERATOR_NAMESPACE = 'secretsync-system';

export interface BenchOptions {
  /** Objects created in parallel by the benchmark itself. */
  createConcurrency: number;
  /** The operator's --concurrency; the raw baseline uses the same. */
  operatorConcurrency: number;
  /** Unrelated Secrets in the unrelated-secrets scenario. */
  unrelated: number;
  /** Refresh interval (seconds) of steady-state and fan-in. */
  refreshSeconds: number;
  /** Refresh intervals steady-state observes. */
  intervals: number;
  /** Changes of each kind in change-latency (capped at N). */
  changes: number;
  /** Counts of the hostile scenario's kinds that replace the ones derived from N (`--hostile-mix fat=200,big=0`). */
  hostileMix?: Record<string, number>;
  /** Extra flags for the operator (e.g. --kube-qps). */
  operatorArgs: string[];
  /** Write a V8 CPU profile of each operator process into this directory. */
  cpuProfDir?: string;
  /** Write a V8 heap snapshot of each operator process into this directory just before it stops. */
  heapSnapshotDir?: string;
  /**
   * Run the compiled operator (`dist/`, what the image ships) rather than the
   * sources through the tsx loader, which compiles in-process and adds about
   * 130 MiB to the RSS. `npm run bench` builds first; the CI smoke run uses tsx.
   */
  compiled: boolean;
}

export const defaultOptions = (): BenchOptions => ({
  createConcurrency: 32,
  operatorConcurrency: 16,
  unrelated: 20_000,
  refreshSeconds: 10,
  intervals: 5,
  changes: 200,
  operatorArgs: [],
  compiled: true,
});

export type Figure = number | string | boolean | Record<string, number>;
export type Figures = Record<string, Figure>;

export interface BenchContext {
  cluster: TestCluster;
  kube: KubeClient;
  moto(): Promise<MotoServer>;
  options: BenchOptions;
  log(message: string): void;
  /** Figures of scenarios that already ran in this run (raw-baseline reads cold-sync's). */
  results: Map<string, Figures>;
}

export function adminKube(cluster: TestCluster): KubeClient {
  return new KubeClient(cluster.kubeConfig(), { maxSockets: 64, userAgent: 'secretsync-bench' });
}

export async function ensureNamespace(kube: KubeClient, name: string): Promise<void> {
  try {
    await kube.request('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
    });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/** A namespace name no earlier run used. */
export const benchNamespace = (scenario: string): string =>
  `bench-${scenario}-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(0, 63);

// ------------------------------------------------------------ kube-apiserver

/** apiserver_request_total summed by "VERB resource[/subresource]". */
export type RequestCounts = Map<string, number>;

export async function apiserverRequests(cluster: TestCluster): Promise<RequestCounts> {
  const res = await cluster.adminRequest('GET', '/metrics');
  if (res.status !== 200) throw new Error(`kube-apiserver /metrics: HTTP ${res.status}`);
  const counts: RequestCounts = new Map();
  for (const s of parsePrometheus(res.body)) {
    if (s.name !== 'apiserver_request_total') continue;
    const resource = s.labels.subresource ? `${s.labels.resource}/${s.labels.subresource}` : (s.labels.resource ?? '');
    const key = `${s.labels.verb ?? ''} ${resource}`;
    counts.set(key, (counts.get(key) ?? 0) + s.value);
  }
  return counts;
}

export function diffRequests(after: RequestCounts, before: RequestCounts): RequestCounts {
  const diff: RequestCounts = new Map();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) diff.set(k, d);
  }
  return diff;
}

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);

/** Headline figures from a request diff: total, writes, and writes to Secrets and ManagedSecret status. */
export function requestFigures(diff: RequestCounts, prefix = 'api'): Figures {
  let total = 0;
  let writes = 0;
  let secretWrites = 0;
  let statusWrites = 0;
  let eventWrites = 0;
  for (const [key, n] of diff) {
    const [verb = '', resource = ''] = key.split(' ');
    total += n;
    if (!WRITE_VERBS.has(verb)) continue;
    writes += n;
    if (resource === 'secrets') secretWrites += n;
    if (resource === 'managedsecrets/status') statusWrites += n;
    if (resource === 'events') eventWrites += n;
  }
  return {
    [`${prefix}Requests`]: total,
    [`${prefix}Writes`]: writes,
    [`${prefix}SecretWrites`]: secretWrites,
    [`${prefix}StatusWrites`]: statusWrites,
    [`${prefix}EventWrites`]: eventWrites,
  };
}

/** The diff as a plain object, for the JSON results. */
export const requestsObject = (diff: RequestCounts): Record<string, number> =>
  Object.fromEntries([...diff.entries()].sort(([a], [b]) => a.localeCompare(b)));

// ------------------------------------------------------------ the operator

export interface OperatorStartOptions {
  namespaces: string[];
  args?: string[];
  env?: Record<string, string>;
}

/**
 * `secretsync run` as its own process (`node --import tsx`, not the tsx
 * wrapper, so the pid is the operator's), so that its peak RSS is its own.
 */
export class OperatorProcess {
  private constructor(
    private readonly heapSnapshotDir: string | undefined,
    private readonly proc: SpawnedProcess,
    private readonly dir: string,
    readonly port: number,
    readonly startedAt: number,
    readonly readyAt: number,
  ) {}

  static async start(ctx: BenchContext, options: OperatorStartOptions): Promise<OperatorProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'secretsync-bench-op-'));
    // Removed on stop, and by the harness's exit handlers if the run dies first.
    trackTempDir(dir);
    const logFile = join(dir, 'operator.log');
    const nodeArgs = ctx.options.compiled ? [] : ['--import', 'tsx'];
    if (ctx.options.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${ctx.options.cpuProfDir}`);
    if (ctx.options.heapSnapshotDir)
      nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${ctx.options.heapSnapshotDir}`);
    const entry = ctx.options.compiled ? 'dist/src/cli/index.js' : 'src/cli/index.ts';
    if (!existsSync(join(REPO_ROOT, entry))) throw new Error(`${entry} is missing: run \`npm run build\` first`);
    const args = [
      ...nodeArgs,
      join(REPO_ROOT, entry),
      'run',
      '--kubeconfig',
      ctx.cluster.kubeconfigPath,
      '--metrics-address',
      '127.0.0.1:0',
      '--leader-elect',
      'false',
      '--operator-namespace',
      OPERATOR_NAMESPACE,
      '--namespaces',
      options.namespaces.join(','),
      '--concurrency',
      String(ctx.options.operatorConcurrency),
      // The namespaced local stores of the fixtures live under the temporary directory.
      '--local-store-root',
      tmpdir(),
      ...ctx.options.operatorArgs,
      ...(options.args ?? []),
    ];
    const startedAt = Date.now();
    const proc = spawnLogged('secretsync', process.execPath, args, logFile, {
      env: {
        ...process.env,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        // As the chart runs it (its default nodeOptions), unless the caller set NODE_OPTIONS.
        NODE_OPTIONS: process.env.NODE_OPTIONS ?? chartNodeOptions(),
        ...options.env,
      },
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const port = findPort(readFileSync(logFile, 'utf8'));
      if (port !== undefined) {
        await ensureNamespace(ctx.kube, OPERATOR_NAMESPACE);
        return new OperatorProcess(ctx.options.heapSnapshotDir, proc, dir, port, startedAt, Date.now());
      }
      if (!proc.isRunning() || Date.now() > deadline) {
        await proc.stop();
        const tail = readFileSync(logFile, 'utf8').slice(-3000);
        releaseTempDir(dir);
        throw new Error(`the operator did not start; the end of its log:\n${tail}`);
      }
      await sleep(50);
    }
  }

  get pid(): number {
    return this.proc.pid;
  }

  get logFile(): string {
    return this.proc.logFile;
  }

  /** The operator's /metrics; with `families`, only those (see COUNTER_FAMILIES). */
  async metrics(families?: readonly string[]): Promise<Sample[]> {
    const query = families ? `?${families.map((f) => `name=${encodeURIComponent(f)}`).join('&')}` : '';
    const res = await fetch(`http://127.0.0.1:${this.port}/metrics${query}`);
    return parsePrometheus(await res.text());
  }

  /** Peak resident set size (VmHWM) so far, in MiB. */
  peakRssMiB(): number {
    return statusKiB(this.proc.pid, 'VmHWM') / 1024;
  }

  rssMiB(): number {
    return statusKiB(this.proc.pid, 'VmRSS') / 1024;
  }

  /** Reads the peak RSS, then stops the process (SIGTERM, drain); a second call returns the first's result. */
  stop(): Promise<{ peakRssMiB: number }> {
    // Scenarios stop an operator when done and again in `finally` (for a failure half-way): once is enough.
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private stopping: Promise<{ peakRssMiB: number }> | undefined;

  private async stopOnce(): Promise<{ peakRssMiB: number }> {
    const peakRssMiB = this.proc.isRunning() ? this.peakRssMiB() : Number.NaN;
    if (this.heapSnapshotDir && this.proc.isRunning()) await this.heapSnapshot(this.heapSnapshotDir);
    await this.proc.stop(30_000);
    // SECRETSYNC_BENCH_KEEP_LOGS=DIR keeps each operator's log (say, to see why a scenario failed).
    const keep = process.env.SECRETSYNC_BENCH_KEEP_LOGS;
    if (keep) copyFileSync(this.proc.logFile, join(keep, `operator-${this.proc.pid}.log`));
    releaseTempDir(this.dir);
    return { peakRssMiB };
  }

  /** SIGUSR2 (`--heapsnapshot-signal`), then waits until the snapshot file stops growing. */
  private async heapSnapshot(dir: string): Promise<void> {
    const before = new Set(readdirSync(dir));
    process.kill(this.proc.pid, 'SIGUSR2');
    let size = -1;
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(500)) {
      const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
      if (!file) continue;
      const now = statSync(join(dir, file)).size;
      if (now > 0 && now === size) return;
      size = now;
    }
    throw new Error(`no heap snapshot appeared in ${dir}`);
  }
}

/** The chart's default `nodeOptions` (charts/secretsync/values.yaml). */
export function chartNodeOptions(): string {
  const values = parseYaml(readFileSync(join(REPO_ROOT, 'charts/secretsync/values.yaml'), 'utf8')) as {
    nodeOptions?: string;
  };
  return values.nodeOptions ?? '';
}

/** The chart's default container memory limit (charts/secretsync/values.yaml `resources.limits.memory`), in MiB. */
export function chartMemoryLimitMiB(): number {
  const values = parseYaml(readFileSync(join(REPO_ROOT, 'charts/secretsync/values.yaml'), 'utf8')) as {
    resources?: { limits?: { memory?: string } };
  };
  const limit = values.resources?.limits?.memory ?? '';
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi)?$/.exec(limit);
  if (!match)
    throw new Error(
      `charts/secretsync/values.yaml: resources.limits.memory "${limit}" is not a quantity in Ki, Mi or Gi`,
    );
  // A bare number is bytes.
  const factor = { Ki: 1 / 1024, Mi: 1, Gi: 1024 }[match[2] ?? ''] ?? 1 / 2 ** 20;
  return Number(match[1]) * factor;
}

function findPort(log: string): number | undefined {
  for (const line of log.split('\n')) {
    if (!line.includes('serving /healthz')) continue;
    try {
      const port = (JSON.parse(line) as { port?: number }).port;
      if (typeof port === 'number') return port;
    } catch {
      // a partial line: read again
    }
  }
  return undefined;
}

function statusKiB(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

/** Operator counters the scenarios report. */
export interface OperatorCounters {
  secretWrites: number;
  statusWrites: number;
  kubeWrites: number;
  syncsSynced: number;
  syncsUnchanged: number;
  syncsError: number;
  /** ManagedSecrets found in sync from status at first sight, without a read (a restart's verifications). */
  verifiedFromStatus: number;
  providerRequests: number;
  /** Reads only (getValue, getValues, getProperties, find), not connects or store checks. */
  providerReads: number;
  cacheMiss: number;
  cacheHit: number;
  cacheShared: number;
}

/**
 * The metric families operatorCounters reads: a poller asks for these alone,
 * so that the operator does not serialise its per-ManagedSecret series (one
 * line each, 50,000 at N = 50,000) at every poll of a measurement.
 */
export const COUNTER_FAMILIES = [
  'secretsync_kube_writes_total',
  'secretsync_syncs_total',
  'secretsync_provider_requests_total',
  'secretsync_fetch_cache_total',
  'secretsync_managedsecrets_verified_total',
] as const;

export function operatorCounters(samples: Sample[]): OperatorCounters {
  const s = (name: string, match: Record<string, string> = {}) =>
    samples
      .filter((x) => x.name === name && Object.entries(match).every(([k, v]) => x.labels[k] === v))
      .reduce((n, x) => n + x.value, 0);
  return {
    secretWrites: s('secretsync_kube_writes_total', { resource: 'secrets' }),
    statusWrites: s('secretsync_kube_writes_total', { resource: 'managedsecrets/status' }),
    kubeWrites: s('secretsync_kube_writes_total'),
    syncsSynced: s('secretsync_syncs_total', { result: 'synced' }),
    syncsUnchanged: s('secretsync_syncs_total', { result: 'unchanged' }),
    syncsError: s('secretsync_syncs_total', { result: 'error' }),
    verifiedFromStatus: s('secretsync_managedsecrets_verified_total'),
    providerRequests: s('secretsync_provider_requests_total'),
    providerReads: ['getValue', 'getValues', 'getProperties', 'find'].reduce(
      (n, operation) => n + s('secretsync_provider_requests_total', { operation }),
      0,
    ),
    cacheMiss: s('secretsync_fetch_cache_total', { result: 'miss' }),
    cacheHit: s('secretsync_fetch_cache_total', { result: 'hit' }),
    cacheShared: s('secretsync_fetch_cache_total', { result: 'shared' }),
  };
}

export function diffCounters(after: OperatorCounters, before: OperatorCounters): OperatorCounters {
  const out = { ...after };
  for (const k of Object.keys(out) as (keyof OperatorCounters)[]) out[k] = after[k] - before[k];
  return out;
}
