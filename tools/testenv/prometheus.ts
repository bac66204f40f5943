// A real Prometheus server (Debian's package, see tools/install-prometheus.sh)
// for tests that check what people will look at: it scrapes given targets on
// 127.0.0.1 and answers PromQL through its HTTP API, as Grafana would ask it.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrometheus } from './binaries.js';
import { simpleRequest } from './http.js';
import {
  freePort,
  GiveUpError,
  releaseTempDir,
  spawnLogged,
  trackTempDir,
  waitFor,
  type SpawnedProcess,
} from './processes.js';

export interface ScrapeJob {
  /** The job label of every series scraped. */
  job: string;
  /** host:port targets. */
  targets: string[];
  /** Target labels added to every series (as a ServiceMonitor adds namespace, pod, ...). */
  labels?: Record<string, string>;
}

export interface StartPrometheusOptions {
  jobs: ScrapeJob[];
  /** Scrape (and rule evaluation) interval; default 1s, so tests see several scrapes quickly. */
  scrapeInterval?: string;
}

/** One series of an instant query's answer. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data?: T;
  error?: string;
  errorType?: string;
}

export class PrometheusServer {
  private constructor(
    readonly url: string,
    private readonly proc: SpawnedProcess,
    private readonly dir: string,
  ) {}

  static async start(options: StartPrometheusOptions): Promise<PrometheusServer> {
    const { prometheus } = await ensurePrometheus();
    const dir = mkdtempSync(join(tmpdir(), 'secretsync-prometheus-'));
    trackTempDir(dir);
    mkdirSync(join(dir, 'data'));
    const interval = options.scrapeInterval ?? '1s';
    // JSON is YAML: no YAML writer needed for the config.
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      scrape_configs: options.jobs.map((j) => ({
        job_name: j.job,
        metrics_path: '/metrics',
        static_configs: [{ targets: j.targets, labels: j.labels ?? {} }],
      })),
    };
    writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
    const port = await freePort();
    const proc = spawnLogged(
      'prometheus',
      prometheus,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      join(dir, 'prometheus.log'),
    );
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        'prometheus ready',
        async () => {
          if (!proc.isRunning()) throw new GiveUpError(`prometheus exited during start-up; see ${proc.logFile}`);
          const res = await simpleRequest(`${url}/-/ready`);
          return res.status === 200 ? true : undefined;
        },
        60_000,
      );
    } catch (err) {
      await proc.stop();
      releaseTempDir(dir);
      throw err;
    }
    return new PrometheusServer(url, proc, dir);
  }

  get logFile(): string {
    return this.proc.logFile;
  }

  /** An instant query (GET /api/v1/query); throws with Prometheus's error for a bad expression. */
  async query(expr: string): Promise<PromSample[]> {
    const data = await this.api<{ resultType: string; result: PromSample[] | [number, string] }>(
      `/api/v1/query?query=${encodeURIComponent(expr)}`,
    );
    // A scalar or string answer is one value, not a list of series.
    if (data.resultType === 'scalar' || data.resultType === 'string')
      return [{ metric: {}, value: data.result as [number, string] }];
    return data.result as PromSample[];
  }

  /** Values of a label among series matching `match` (what Grafana's label_values() asks). */
  async labelValues(label: string, match: string): Promise<string[]> {
    return this.api<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values?match[]=${encodeURIComponent(match)}`);
  }

  private async api<T>(path: string): Promise<T> {
    const res = await simpleRequest(`${this.url}${path}`);
    let answer: ApiAnswer<T>;
    try {
      answer = JSON.parse(res.body) as ApiAnswer<T>;
    } catch {
      throw new Error(`prometheus ${path}: HTTP ${res.status}, not JSON`);
    }
    if (answer.status !== 'success' || answer.data === undefined)
      throw new Error(`prometheus ${path}: ${answer.errorType ?? 'error'}: ${answer.error ?? `HTTP ${res.status}`}`);
    return answer.data;
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    releaseTempDir(this.dir);
  }
}
