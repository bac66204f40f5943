// raw-go: the API server's own write limit on this machine, so that cold-sync's
// throughput can be given as a fraction of what any client could get, not of
// what @kubernetes/client-node gets (raw-baseline). It runs the same N Secrets
// (3 keys, one label) through client-go (tools/kube-rawclient, unthrottled) at
// several concurrencies over HTTP/2 and HTTP/1.1, and through our own
// KubeClient (node:https keep-alive pool) and a node:http2 session (one
// connection, many streams) at the same concurrency: does HTTP/2 help a Node client?
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import type { RequestOptions } from 'node:https';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';
import { KubeClient } from '../../src/kube/client.js';
import { loadKubeConfig, type KubeAuth } from '../../src/kube/config.js';
import { ensureKubeRawClient } from '../../tools/testenv/binaries.js';
import { benchNamespace, ensureNamespace, type BenchContext, type Figures } from '../lib/context.js';
import { percentile, pool, range, round } from '../lib/util.js';

const execFileAsync = promisify(execFile);

/** The label every Secret of this scenario carries (the same as raw-baseline's), which the clean-up selects. */
const RAW_LABEL = 'bench.secretsync.io/raw';

export type RawClient = 'client-go' | 'KubeClient' | 'node:http2';

/** One batch of N creates by one client. */
export interface RawRun {
  client: RawClient;
  /** What the responses came over: `HTTP/2.0`, `HTTP/1.1`. */
  protocol: string;
  concurrency: number;
  created: number;
  seconds: number;
  secretsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** TCP connections opened (client-go; node:http2 uses one). */
  connections?: number;
  /** Responses that were not 201 (a 429 that client-go retried by itself counts here). */
  non201: number;
}

export interface RawGoPlan {
  /** client-go's concurrencies, each over HTTP/2 and HTTP/1.1. */
  clientGoConcurrency: number[];
  /** KubeClient against node:http2, at each of these. */
  nodeConcurrency: number[];
}

/** The operator's concurrency is added to both lists. */
export const DEFAULT_RAW_GO_PLAN: RawGoPlan = { clientGoConcurrency: [16, 64, 256], nodeConcurrency: [64] };

/** Secret bodies as raw-baseline makes them: three keys of random content, one label. */
function secretBodies(n: number, prefix: string): Record<string, unknown>[] {
  return range(n).map((i) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${prefix}-${i}`, labels: { [RAW_LABEL]: 'true' } },
    type: 'Opaque',
    data: Object.fromEntries(
      ['a', 'b', 'c'].map((k) => [k, Buffer.from(`${k}-${i}-${randomBytes(8).toString('hex')}`).toString('base64')]),
    ),
  }));
}

interface KubeRawClientOutput {
  created: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  protocols: Record<string, number>;
  statuses: Record<string, number>;
  connections: number;
}

/** N Secrets with client-go (tools/kube-rawclient), over HTTP/2 unless `http1`. */
export async function createWithClientGo(
  kubeconfigPath: string,
  namespace: string,
  n: number,
  options: { concurrency: number; http1: boolean; prefix: string },
): Promise<RawRun> {
  const binary = await ensureKubeRawClient();
  const args = [
    `--kubeconfig=${kubeconfigPath}`,
    `--namespace=${namespace}`,
    `--n=${n}`,
    `--concurrency=${options.concurrency}`,
    `--prefix=${options.prefix}`,
    ...(options.http1 ? ['--http1'] : []),
  ];
  const { stdout } = await execFileAsync(binary, args, { maxBuffer: 1 << 20, timeout: 30 * 60_000 });
  const out = JSON.parse(stdout) as KubeRawClientOutput;
  const protocols = Object.keys(out.protocols);
  const expected = options.http1 ? 'HTTP/1.1' : 'HTTP/2.0';
  // A run that silently used the other protocol would measure the wrong thing.
  if (protocols.length !== 1 || protocols[0] !== expected)
    throw new Error(
      `kube-rawclient${options.http1 ? ' --http1' : ''} answered over ${protocols.join(', ')}, not ${expected}`,
    );
  const non201 = Object.entries(out.statuses).reduce((sum, [status, count]) => sum + (status === '201' ? 0 : count), 0);
  return {
    client: 'client-go',
    protocol: expected,
    concurrency: options.concurrency,
    created: out.created,
    seconds: round(out.seconds, 2),
    secretsPerSecond: round(out.perSecond, 1),
    p50Ms: out.p50Ms,
    p99Ms: out.p99Ms,
    connections: out.connections,
    non201,
  };
}

/** Times `create` over every body at `concurrency`, with per-request latency. */
async function timedCreates<T>(
  bodies: readonly T[],
  concurrency: number,
  create: (body: T) => Promise<number>,
): Promise<Pick<RawRun, 'created' | 'seconds' | 'secretsPerSecond' | 'p50Ms' | 'p99Ms' | 'non201'>> {
  const latencies: number[] = [];
  let non201 = 0;
  const started = performance.now();
  await pool(bodies, concurrency, async (body) => {
    const t0 = performance.now();
    const status = await create(body);
    latencies.push(performance.now() - t0);
    if (status !== 201) non201++;
  });
  const elapsedMs = performance.now() - started;
  if (non201 > 0) throw new Error(`${non201} of ${bodies.length} creates were not answered 201`);
  return {
    created: bodies.length,
    seconds: round(elapsedMs / 1000, 2),
    secretsPerSecond: round(bodies.length / (elapsedMs / 1000), 1),
    p50Ms: round(percentile(latencies, 50), 1),
    p99Ms: round(percentile(latencies, 99), 1),
    non201,
  };
}

/** N Secrets with our KubeClient: node:https, a keep-alive pool of `concurrency` sockets, no client-side rate limit. */
export async function createWithKubeClient(
  auth: KubeAuth,
  namespace: string,
  bodies: Record<string, unknown>[],
  concurrency: number,
): Promise<RawRun> {
  const client = new KubeClient(auth, { maxSockets: concurrency, userAgent: 'secretsync-bench-raw' });
  const path = `/api/v1/namespaces/${namespace}/secrets`;
  const encoded = bodies.map((body) => ({ body, encodedBody: Buffer.from(JSON.stringify(body)) }));
  // The operator writes Secrets the same way: a pre-encoded body, the echoed Secret drained unread.
  // KubeClient throws on any status but 2xx, so an answer here is a 201.
  const figures = await timedCreates(encoded, concurrency, async ({ body, encodedBody }) => {
    await client.request('POST', path, { body, encodedBody, discardBody: true });
    return 201;
  });
  return { client: 'KubeClient', protocol: 'HTTP/1.1', concurrency, ...figures };
}

/** One HTTP/2 session to the API server with the kubeconfig's credentials; fails unless ALPN chose h2. */
export async function http2Session(
  auth: KubeAuth,
): Promise<{ session: ClientHttp2Session; headers: OutgoingHttpHeaders }> {
  const server = auth.getCurrentCluster()?.server;
  if (!server?.startsWith('https://')) throw new Error(`HTTP/2 needs an https:// server, got ${server ?? 'none'}`);
  const tls: RequestOptions = {};
  await auth.applyToHTTPSOptions(tls);
  const session = connect(server, {
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    servername: tls.servername,
    rejectUnauthorized: tls.rejectUnauthorized,
  });
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  if (session.alpnProtocol !== 'h2') {
    session.close();
    throw new Error(`the API server did not accept h2 (ALPN chose ${String(session.alpnProtocol)})`);
  }
  const authorization = (tls.headers as Record<string, string> | undefined)?.authorization;
  return { session, headers: authorization ? { authorization } : {} };
}

/** N Secrets over one node:http2 session: `concurrency` streams in flight on one connection. */
export async function createWithNodeHttp2(
  auth: KubeAuth,
  namespace: string,
  bodies: Record<string, unknown>[],
  concurrency: number,
): Promise<RawRun> {
  const { session, headers } = await http2Session(auth);
  let sessionError: unknown;
  session.on('error', (err) => (sessionError = err));
  const path = `/api/v1/namespaces/${namespace}/secrets`;
  const post = (body: Buffer): Promise<number> =>
    new Promise((resolve, reject) => {
      if (sessionError) return reject(sessionError instanceof Error ? sessionError : new Error(String(sessionError)));
      const stream = session.request({
        ...headers,
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': 'secretsync-bench-raw',
      });
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      // The echoed Secret is read and dropped, as KubeClient's discardBody does.
      stream.resume();
      stream.on('end', () => resolve(status));
      stream.on('error', reject);
      stream.end(body);
    });
  try {
    const figures = await timedCreates(
      bodies.map((b) => Buffer.from(JSON.stringify(b))),
      concurrency,
      post,
    );
    return { client: 'node:http2', protocol: 'HTTP/2.0', concurrency, connections: 1, ...figures };
  } finally {
    session.close();
  }
}

/** Deletes this scenario's Secrets between runs, so each run starts from the same empty namespace. */
async function deleteRawSecrets(ctx: BenchContext, namespace: string): Promise<void> {
  await ctx.kube.request('DELETE', `/api/v1/namespaces/${namespace}/secrets`, {
    query: { labelSelector: `${RAW_LABEL}=true` },
    discardBody: true,
    // Deleting a collection twice is harmless: a timeout (or 504) may repeat it.
    idempotent: true,
    timeoutMs: 10 * 60_000,
  });
}

const label = (run: RawRun): string =>
  `${run.client} ${run.protocol === 'HTTP/2.0' ? 'h2' : 'http/1.1'} x${run.concurrency}`;

const load1m = (): number => round(loadavg()[0] ?? 0, 2);

const uniqueSorted = (values: number[]): number[] => [...new Set(values)].sort((a, b) => a - b);

/** Runs the plan in one namespace and reports every run and the ratios to the fastest client-go run. */
export async function runRawGo(ctx: BenchContext, n: number, plan: RawGoPlan): Promise<Figures> {
  const namespace = benchNamespace('raw-go');
  await ensureNamespace(ctx.kube, namespace);
  const auth = await loadKubeConfig(ctx.cluster.kubeconfigPath);
  const operatorConcurrency = ctx.options.operatorConcurrency;
  const runs: RawRun[] = [];
  /** Per run, for the printed table: rate, latency, connections, and the machine's load around it. */
  const summaries: Record<string, string> = {};
  const record = async (start: () => Promise<RawRun>) => {
    const loadBefore = load1m();
    const done = await start();
    if (done.created !== n) throw new Error(`${label(done)} created ${done.created} of ${n} Secrets`);
    const connections = done.connections === undefined ? '' : `, ${done.connections} conn`;
    summaries[`run ${label(done)}`] =
      `${done.secretsPerSecond}/s p50 ${done.p50Ms} p99 ${done.p99Ms} ms${connections}, load ${loadBefore}→${load1m()}`;
    ctx.log(`raw-go: ${label(done)}: ${summaries[`run ${label(done)}`]}`);
    runs.push(done);
    await deleteRawSecrets(ctx, namespace);
  };

  await ensureKubeRawClient();
  for (const concurrency of uniqueSorted([operatorConcurrency, ...plan.clientGoConcurrency])) {
    // HTTP/2 and HTTP/1.1 back to back at each concurrency, so drift in the machine's load hits both alike.
    for (const http1 of [false, true]) {
      const prefix = `go-${http1 ? 'h1' : 'h2'}-${concurrency}`;
      ctx.log(`raw-go: client-go ${http1 ? 'HTTP/1.1' : 'HTTP/2'}, ${concurrency} in flight, ${n} Secrets`);
      await record(() => createWithClientGo(ctx.cluster.kubeconfigPath, namespace, n, { concurrency, http1, prefix }));
    }
  }
  for (const concurrency of uniqueSorted([operatorConcurrency, ...plan.nodeConcurrency])) {
    ctx.log(`raw-go: KubeClient and node:http2, ${concurrency} in flight, ${n} Secrets`);
    await record(() => createWithKubeClient(auth, namespace, secretBodies(n, `kc-${concurrency}`), concurrency));
    await record(() => createWithNodeHttp2(auth, namespace, secretBodies(n, `h2-${concurrency}`), concurrency));
  }

  const perSecond = (pick: (r: RawRun) => boolean): number =>
    Math.max(...runs.filter(pick).map((r) => r.secretsPerSecond));
  const best = runs
    .filter((r) => r.client === 'client-go')
    .reduce((a, b) => (b.secretsPerSecond > a.secretsPerSecond ? b : a));
  const at = (client: RawClient, protocol: string, concurrency: number) =>
    perSecond((r) => r.client === client && r.protocol === protocol && r.concurrency === concurrency);
  const kubeClient = at('KubeClient', 'HTTP/1.1', operatorConcurrency);
  const nodeHttp2 = at('node:http2', 'HTTP/2.0', operatorConcurrency);
  const figures: Figures = {
    namespace,
    operatorConcurrency,
    alpn: 'h2',
    secretsPerSecond: Object.fromEntries(runs.map((r) => [label(r), r.secretsPerSecond])),
    p50Ms: Object.fromEntries(runs.map((r) => [label(r), r.p50Ms])),
    p99Ms: Object.fromEntries(runs.map((r) => [label(r), r.p99Ms])),
    clientGoConnections: Object.fromEntries(
      runs.filter((r) => r.connections !== undefined).map((r) => [label(r), r.connections as number]),
    ),
    clientGoRetried: runs.reduce((sum, r) => sum + r.non201, 0),
    bestClientGo: label(best),
    bestClientGoSecretsPerSecond: best.secretsPerSecond,
    clientGoH2AtOperatorConcurrency: at('client-go', 'HTTP/2.0', operatorConcurrency),
    clientGoHttp1AtOperatorConcurrency: at('client-go', 'HTTP/1.1', operatorConcurrency),
    kubeClientSecretsPerSecond: kubeClient,
    nodeHttp2SecretsPerSecond: nodeHttp2,
    // Above 1: one HTTP/2 session beats our keep-alive pool at the operator's concurrency.
    nodeHttp2OverKubeClient: round(nodeHttp2 / kubeClient, 3),
    ...summaries,
  };
  const cold = ctx.results.get('cold-sync');
  if (cold && typeof cold.syncsPerSecond === 'number') {
    figures.coldSyncRatio = round(cold.syncsPerSecond / best.secretsPerSecond, 3);
    if (typeof cold.syncsPerSecondAfterStart === 'number')
      figures.coldSyncRatioAfterStart = round(cold.syncsPerSecondAfterStart / best.secretsPerSecond, 3);
  }
  const clientNode = ctx.results.get('raw-baseline');
  if (clientNode && typeof clientNode.secretsPerSecond === 'number')
    figures.rawBaselineRatio = round(clientNode.secretsPerSecond / best.secretsPerSecond, 3);
  return figures;
}

/** The registry's entry: the default plan at N. */
export const rawGoScenario = (ctx: BenchContext, n: number): Promise<Figures> => runRawGo(ctx, n, DEFAULT_RAW_GO_PLAN);
