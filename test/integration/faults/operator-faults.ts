// Pieces shared by the operator-level fault tests and the `faults` benchmark:
// - the operator as its own process, with every setting passed through the
//   environment (SECRETSYNC_*), so that the same test can also run the code from
//   before the fault-tolerance work, whose CLI lacks the newer flags (an unknown
//   environment variable is ignored where an unknown flag would be refused):
//   SECRETSYNC_FAULTS_OPERATOR_ROOT=/path/to/old/checkout runs that checkout's
//   src/cli;
// - a fleet watch that follows every target Secret and ManagedSecret from
//   before a fault to after it: it records each Secret deleted, recreated or
//   emptied (what a fault must never cause), and says when the fleet has
//   converged on the values the store holds;
// - request counts from the API server's audit log, by user agent.
import { CreateSecretCommand, PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import { KubeClient, type KubeObject } from '../../../src/kube/client.js';
import { Informer } from '../../../src/kube/informer.js';
import type { AuditEvent, MotoServer, TestCluster } from '../../../tools/testenv/index.js';
import { repoRoot } from '../../../tools/testenv/paths.js';
import { createMotoSecretsManagerStore } from '../operator.js';
import { parsePrometheus, type Sample } from '../../../bench/lib/util.js';

/** The checkout whose operator the fault tests run (default: this one). */
export const OPERATOR_ROOT = process.env.SECRETSYNC_FAULTS_OPERATOR_ROOT ?? repoRoot;
export const OPERATOR_NAMESPACE = 'secretsync-system';
/** The user agents the operator's clients send (workers and informers; leader election). */
export const OPERATOR_AGENTS: ReadonlySet<string> = new Set(['secretsync', 'secretsync-leader-election']);
/** The user agent of the harness's own clients, so the audit log tells them apart. */
export const HARNESS_AGENT = 'secretsync-faults-harness';

/**
 * Everything the audit log needs for counting: one event per request (at
 * ResponseComplete), metadata only (Secrets hold values). Lease writes are
 * included: the leader fault attributes writes to replicas by user.
 */
export const COUNTING_AUDIT_POLICY = JSON.stringify({
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived', 'ResponseStarted'],
  rules: [
    { level: 'None', nonResourceURLs: ['/healthz*', '/readyz*', '/livez*', '/metrics', '/version'] },
    { level: 'Metadata' },
  ],
});

/** An admin client for the harness (its own user agent; short deadlines so a fault cannot hang the test). */
export function harnessClient(cluster: TestCluster): KubeClient {
  return new KubeClient(cluster.kubeConfig(), {
    userAgent: HARNESS_AGENT,
    requestTimeoutMs: 10_000,
    connectTimeoutMs: 2_000,
    watchIdleTimeoutMs: 15_000,
    maxSockets: 16,
  });
}

export interface FaultOperator {
  child: ChildProcess;
  /** Log lines (JSON) in arrival order. */
  lines: string[];
  /** The /metrics port, once the operator serves it. */
  port(): Promise<number>;
  metrics(): Promise<Sample[]>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
  exited(): boolean;
}

export interface FaultOperatorOptions {
  kubeconfigPath: string;
  namespaces: string[];
  /** SECRETSYNC_* settings on top of the harness's defaults. */
  env?: Record<string, string>;
  leaderElect?: boolean;
  identity?: string;
}

/** `secretsync run` of OPERATOR_ROOT as a process (node with the tsx loader: a signal reaches the operator itself). */
export function spawnFaultOperator(options: FaultOperatorOptions): FaultOperator {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(OPERATOR_ROOT, 'src', 'cli', 'index.ts'),
      'run',
      '--kubeconfig',
      options.kubeconfigPath,
      '--namespaces',
      options.namespaces.join(','),
      '--operator-namespace',
      OPERATOR_NAMESPACE,
      '--metrics-address',
      '127.0.0.1:0',
      '--leader-elect',
      String(options.leaderElect ?? false),
      ...(options.identity ? ['--identity', options.identity] : []),
    ],
    {
      cwd: OPERATOR_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        SECRETSYNC_LOG_LEVEL: 'info',
        // Tests refresh every few seconds; the namespaced local stores live under the temporary directory.
        SECRETSYNC_MIN_REFRESH_INTERVAL: '0',
        SECRETSYNC_LOCAL_STORE_ROOT: tmpdir(),
        ...options.env,
      },
    },
  );
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter(Boolean));
    });
  }
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const exit = new Promise<void>((resolve) => {
    if (exited()) resolve();
    child.once('exit', () => resolve());
  });
  let port: number | undefined;
  const findPort = async (): Promise<number> => {
    for (const deadline = Date.now() + 60_000; port === undefined; await pause(100)) {
      for (const line of lines) {
        if (!line.includes('serving /healthz')) continue;
        const found = (JSON.parse(line) as { port?: number }).port;
        if (typeof found === 'number') port = found;
      }
      if (port !== undefined) break;
      if (exited() || Date.now() > deadline)
        throw new Error(`the operator did not serve /metrics; its last lines:\n${lines.slice(-20).join('\n')}`);
    }
    return port;
  };
  return {
    child,
    lines,
    exited,
    port: findPort,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${await findPort()}/metrics`, { signal: AbortSignal.timeout(5_000) });
      return parsePrometheus(await res.text());
    },
    async stop(graceMs = 30_000) {
      if (exited()) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes a kubeconfig (YAML) to `dir` and returns its path. */
export function writeKubeconfig(dir: string, name: string, kc: { exportConfig(): string }): string {
  const path = join(dir, name);
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return path;
}

/** Requests the operator sent that the API server logged, received in [from, to) (ms since the epoch). */
export function operatorRequests(events: readonly AuditEvent[], from: number, to: number): AuditEvent[] {
  return events.filter((e) => {
    if (e.stage !== 'ResponseComplete' && e.stage !== 'Panic') return false;
    if (!OPERATOR_AGENTS.has(e.userAgent ?? '')) return false;
    const at = Date.parse(e.requestReceivedTimestamp);
    return at >= from && at < to;
  });
}

const decode = (data: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

type SecretLike = KubeObject & { data?: Record<string, string> };
type ManagedSecretLike = ManagedSecret & KubeObject;

export interface FleetState {
  /** Target Secrets holding exactly the expected data. */
  matching: number;
  /** ManagedSecrets with Ready=True for their current generation. */
  ready: number;
  total: number;
}

/**
 * Watches one namespace's ManagedSecrets and Secrets through the harness's
 * own client (straight to the API server, never through a fault proxy). A
 * watch broken by a control-plane fault re-lists when the server is back: a
 * Secret missing from that list counts as deleted, one with a new uid as
 * recreated, so nothing that happened while the watch was down goes unseen.
 */
export class FleetWatch {
  /** Each time a target Secret was deleted, recreated or emptied, with when. */
  readonly violations: string[] = [];
  private readonly secrets: Informer<SecretLike>;
  private readonly managed: Informer<ManagedSecretLike>;
  private readonly uids = new Map<string, string>();
  private guarding = false;

  /**
   * `targets` names the Secrets to guard; `requiredKeys` the keys each must
   * keep, non-empty.
   */
  constructor(
    client: KubeClient,
    readonly namespace: string,
    private readonly targets: ReadonlySet<string>,
    private readonly requiredKeys: readonly string[],
  ) {
    const fast = { retryBaseDelayMs: 100, retryMaxDelayMs: 1_000 };
    this.secrets = new Informer<SecretLike>(client, { path: `/api/v1/namespaces/${namespace}/secrets`, ...fast });
    this.managed = new Informer<ManagedSecretLike>(client, {
      path: `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`,
      ...fast,
    });
    const seen = (s: SecretLike) => {
      const name = s.metadata.name;
      if (!this.guarding || !this.targets.has(name)) return;
      const at = new Date().toISOString();
      const uid = this.uids.get(name);
      if (uid !== undefined && uid !== s.metadata.uid) this.violations.push(`${at} ${name} recreated`);
      this.uids.set(name, s.metadata.uid ?? '');
      const data = decode(s.data);
      const emptied = this.requiredKeys.filter((k) => !data[k]);
      if (emptied.length > 0) this.violations.push(`${at} ${name} lost or emptied ${emptied.join(',')}`);
    };
    this.secrets.on({
      add: seen,
      update: (_old, cur) => seen(cur),
      delete: (s) => {
        if (this.guarding && this.targets.has(s.metadata.name))
          this.violations.push(`${new Date().toISOString()} ${s.metadata.name} deleted`);
      },
    });
  }

  async start(): Promise<this> {
    await Promise.all([this.secrets.start(), this.managed.start()]);
    return this;
  }

  async stop(): Promise<void> {
    await Promise.all([this.secrets.stop(), this.managed.stop()]);
  }

  /** From now on, every target must exist, keep its uid and keep its keys; checks the present state at once. */
  guard(): void {
    this.guarding = true;
    for (const name of this.targets) {
      const s = this.secrets.get(`${this.namespace}/${name}`);
      if (!s) {
        this.violations.push(`${name} missing when the guard started`);
        continue;
      }
      this.uids.set(name, s.metadata.uid ?? '');
    }
  }

  /** The fleet against what each target should hold (`expected(name)`). */
  state(expected: (name: string) => Record<string, string>): FleetState {
    let matching = 0;
    let ready = 0;
    for (const name of this.targets) {
      const s = this.secrets.get(`${this.namespace}/${name}`);
      const want = expected(name);
      const data = decode(s?.data);
      if (s && Object.keys(want).every((k) => data[k] === want[k])) matching++;
      const ms = this.managed.get(`${this.namespace}/${name}`);
      if (
        ms?.status?.observedGeneration === ms?.metadata.generation &&
        (ms?.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
      )
        ready++;
    }
    return { matching, ready, total: this.targets.size };
  }

  /** Resolves with the time (ms since the epoch) at which every target holds its value and every ManagedSecret is Ready. */
  async converged(
    expected: (name: string) => Record<string, string>,
    timeoutMs: number,
    what = 'the fleet to converge',
  ): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.state(expected);
      if (s.matching === s.total && s.ready === s.total) return Date.now();
      if (Date.now() > deadline)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}: ${s.matching}/${s.total} Secrets hold the new value, ${s.ready}/${s.total} Ready`,
        );
      await pause(100);
    }
  }
}

/** The sum of one metric's samples whose labels match. */
export function metricSum(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

/** What the tests need of a local store: the current LocalStore's `put`, as any checkout has it. */
export interface StoreWriter {
  put(name: string, properties: Record<string, string>): Promise<unknown>;
}

/**
 * The LocalStore of OPERATOR_ROOT: the store format changed with the
 * fault-tolerance work (a manifest against rollback), and each checkout reads
 * only what it writes.
 */
export async function operatorLocalStore(dir: string, masterKey: Buffer): Promise<StoreWriter> {
  const mod = (await import(pathToFileURL(join(OPERATOR_ROOT, 'src/providers/local/store.ts')).href)) as {
    LocalStore: new (dir: string, key: Buffer) => StoreWriter;
  };
  return new mod.LocalStore(dir, masterKey);
}

/**
 * N ManagedSecrets `ms-<i>` over a local store of `entries` entries: `ms-<i>`
 * reads entry `app/e-<j>`, j = i mod entries, which holds `{a: 'r<round>-<j>'}`
 * (fewer entries than ManagedSecrets: a local store write costs tens of
 * milliseconds, and a round must be written within a fault).
 */
export interface LocalFleet {
  namespace: string;
  n: number;
  dir: string;
  names: Set<string>;
  /** What target `ms-<i>` must hold once round `round` has reached it. */
  expected(round: number): (name: string) => Record<string, string>;
  /** Writes round `round` to every entry (`concurrency` puts at a time). */
  putRound(round: number, concurrency?: number): Promise<void>;
  cleanup(): void;
}

export const fleetValue = (round: number, i: number): string => `r${round}-${i}`;

export async function createLocalFleet(
  client: KubeClient,
  namespace: string,
  n: number,
  refreshInterval: string,
  entries = n,
): Promise<LocalFleet> {
  await client
    .request('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    })
    .catch((err: unknown) => {
      if ((err as { status?: number }).status !== 409) throw err;
    });
  // A namespaced store lives in its namespace's directory of --local-store-root (tmpdir() here).
  mkdirSync(join(tmpdir(), namespace), { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), namespace, 'secretsync-faults-store-'));
  const masterKey = randomBytes(32);
  await client.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'master-key' },
      data: { 'master-key': masterKey.toString('base64') },
    },
  });
  const store = await operatorLocalStore(dir, masterKey);
  const indices = Array.from({ length: n }, (_, i) => i);
  const putRound = async (round: number, concurrency = 8) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let j = next++; j < entries; j = next++) await store.put(`app/e-${j}`, { a: fleetValue(round, j) });
      }),
    );
  };
  await putRound(0);
  await client.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'SecretStore',
      metadata: { name: 'local' },
      spec: { provider: { local: { path: dir, masterKeySecretRef: { name: 'master-key' } } } },
    },
  });
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < n; i = next++)
        await client.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`, {
          body: {
            apiVersion: API_VERSION,
            kind: 'ManagedSecret',
            metadata: { name: `ms-${i}` },
            spec: {
              storeRef: { name: 'local' },
              refreshInterval,
              data: [{ secretKey: 'a', remoteRef: { key: `app/e-${i % entries}`, property: 'a' } }],
            },
          },
        });
    }),
  );
  return {
    namespace,
    n,
    dir,
    names: new Set(indices.map((i) => `ms-${i}`)),
    expected: (round) => (name) => ({ a: fleetValue(round, Number(name.slice('ms-'.length)) % entries) }),
    putRound,
    cleanup: () => rmSync(join(tmpdir(), namespace), { recursive: true, force: true }),
  };
}

/** When a fault began and ended, when the system was back, and when the fleet converged (or why not). */
export interface FaultRun {
  began: number;
  /** When `end` was called: what happened before is "during the fault". */
  endedAt: number;
  /** When `end` resolved (a restarted component is up again). */
  over: number;
  convergedAt?: number;
  failure?: unknown;
}

/**
 * One fault: `begin` it, `write` new values a second in (so the operator has
 * work it cannot do), hold it `holdMs` in all, `end` it, then wait for
 * `converge` (which resolves with the time it saw convergence, or throws).
 */
export async function throughFault(fault: {
  begin(): Promise<void> | void;
  end(): Promise<void> | void;
  write(): Promise<void>;
  holdMs: number;
  converge(): Promise<number>;
}): Promise<FaultRun> {
  const began = Date.now();
  await fault.begin();
  await pause(1_000);
  await fault.write();
  await pause(fault.holdMs - (Date.now() - began));
  const endedAt = Date.now();
  await fault.end();
  const over = Date.now();
  try {
    return { began, endedAt, over, convergedAt: await fault.converge() };
  } catch (failure) {
    return { began, endedAt, over, failure };
  }
}

/** How many of `times` fall in each second from `from` to `to`. */
export function perSecond(times: readonly number[], from: number, to: number): number[] {
  const counts = new Array<number>(Math.max(0, Math.ceil((to - from) / 1000))).fill(0);
  for (const t of times) {
    if (t < from || t >= to) continue;
    const second = Math.floor((t - from) / 1000);
    counts[second] = (counts[second] ?? 0) + 1;
  }
  return counts;
}

/** N ManagedSecrets `ms-<i>` over a Secrets Manager store: `ms-<i>` reads secret `<namespace>/key-<i>`. */
export interface AwsFleet {
  namespace: string;
  names: Set<string>;
  expected(round: number): (name: string) => Record<string, string>;
  /** Writes round `round` to every secret, straight to moto. */
  putRound(round: number, concurrency?: number): Promise<void>;
}

/** Secrets in moto, static credentials in a Secret, a SecretStore `aws` at `endpoint`, and the ManagedSecrets. */
export async function createAwsFleet(
  client: KubeClient,
  sm: SecretsManagerClient,
  moto: MotoServer,
  options: { namespace: string; n: number; refreshInterval: string; endpoint: string; requestsPerSecond?: number },
): Promise<AwsFleet> {
  const { namespace, n } = options;
  const key = (i: number) => `${namespace}/key-${i}`;
  const each = async (concurrency: number, fn: (i: number) => Promise<unknown>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < n; i = next++) await fn(i);
      }),
    );
  };
  await client
    .request('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    })
    .catch((err: unknown) => {
      if ((err as { status?: number }).status !== 409) throw err;
    });
  await each(8, (i) => sm.send(new CreateSecretCommand({ Name: key(i), SecretString: fleetValue(0, i) })));
  await createMotoSecretsManagerStore(client, namespace, 'aws', {
    region: moto.region,
    endpoint: options.endpoint,
    ...(options.requestsPerSecond !== undefined ? { extra: { requestsPerSecond: options.requestsPerSecond } } : {}),
  });
  await each(16, (i) =>
    client.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        metadata: { name: `ms-${i}` },
        spec: {
          storeRef: { name: 'aws' },
          refreshInterval: options.refreshInterval,
          data: [{ secretKey: 'a', remoteRef: { key: key(i) } }],
        },
      },
    }),
  );
  return {
    namespace,
    names: new Set(Array.from({ length: n }, (_, i) => `ms-${i}`)),
    expected: (round) => (name) => ({ a: fleetValue(round, Number(name.slice('ms-'.length))) }),
    putRound: (round, concurrency = 8) =>
      each(concurrency, (i) =>
        sm.send(new PutSecretValueCommand({ SecretId: key(i), SecretString: fleetValue(round, i) })),
      ),
  };
}

/**
 * A ServiceAccount bound to cluster-admin and a kubeconfig file with a token
 * for it: one identity per replica, so the audit log tells replicas apart.
 * Returns the kubeconfig path and the user name the audit log shows.
 */
export async function replicaKubeconfig(
  client: KubeClient,
  cluster: TestCluster,
  dir: string,
  serviceAccount: string,
): Promise<{ path: string; user: string }> {
  await client.request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts`, {
    body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount } },
  });
  await client.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    body: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${serviceAccount}-admin` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: OPERATOR_NAMESPACE }],
    },
  });
  const res = await client.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts/${serviceAccount}/token`,
    { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } } },
  );
  const path = join(dir, serviceAccount);
  writeFileSync(path, cluster.kubeconfigYamlForToken(res.status.token, serviceAccount), { mode: 0o600 });
  return { path, user: `system:serviceaccount:${OPERATOR_NAMESPACE}:${serviceAccount}` };
}
