import { spawn, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Limits } from '../../src/api/limits.js';
import {
  API_VERSION,
  GROUP,
  type AwsSecretsManagerProviderSpec,
  type Condition,
  type ManagedSecret,
} from '../../src/api/types.js';
import type { ProviderWiring } from '../../src/cli/commands/run.js';
import { Manager, type ManagerOptions } from '../../src/controller/manager.js';
import { KubeClient, isNotFound, isAlreadyExists, type KubeObject } from '../../src/kube/client.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { LocalStore } from '../../src/providers/local/index.js';
import type { StorePolicy } from '../../src/providers/provider.js';
import type { SecretObject } from '../../src/secrets/desired.js';
import { waitFor, type TestCluster } from '../../tools/testenv/index.js';
import { repoRoot } from '../../tools/testenv/paths.js';
import { installCrds } from './crds.js';
import { sharedMoto, uniqueName } from './env.js';

export const OPERATOR_NAMESPACE = 'secretsync-system';

/** An admin JSON client for tests (our own client, so bodies pass through untouched). */
export function adminClient(cluster: TestCluster): KubeClient {
  return new KubeClient(cluster.kubeConfig());
}

export async function ensureNamespace(
  client: KubeClient,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  try {
    await client.request('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } },
    });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/**
 * What the test operator lets namespaced SecretStores reach, as a cluster
 * admin would with --allowed-endpoints and --local-store-root: the shared moto
 * (when the suite runs one) and the system's temporary directory, in whose
 * <namespace> subdirectory createLocalStore makes a namespace's stores.
 */
export function testStorePolicy(extraEndpoints: string[] = []): StorePolicy {
  const moto: string[] = [];
  try {
    moto.push(sharedMoto().endpoint);
  } catch {
    // No shared moto here (the e2e suite): nothing to allow.
  }
  return { allowedEndpoints: [...moto, ...extraEndpoints], localStoreRoot: tmpdir() };
}

/** The same as operator flags, for spawnOperatorProcess. */
export function testStorePolicyArgs(policy: StorePolicy = testStorePolicy()): string[] {
  return [
    ...(policy.allowedEndpoints.length > 0 ? ['--allowed-endpoints', policy.allowedEndpoints.join(',')] : []),
    ...(policy.localStoreRoot ? ['--local-store-root', policy.localStoreRoot] : []),
  ];
}

export interface RunningOperator {
  manager: Manager;
  metrics: Metrics;
  /** Every log line the operator wrote, as JSON text. */
  logs: string[];
  stop(): Promise<void>;
  /** The operator's /metrics text. */
  scrape(): Promise<string>;
}

/** Runs the operator in this process against the cluster, as the admin unless a kubeconfig is given. */
export async function startOperator(
  cluster: TestCluster,
  options: {
    namespaces?: string[];
    leaderElection?: boolean;
    maxConcurrentRestarts?: number;
    identity?: string;
    /** The leader Lease (default secretsync-leader). */
    leaseName?: string;
    /** The admin's refresh floor (default 0 here: tests refresh every second or two). */
    minRefreshIntervalMs?: number;
    kubeConfig?: ReturnType<TestCluster['kubeConfig']>;
    /** Default: testStorePolicy(). */
    storePolicy?: StorePolicy;
    /** Sync workers (default 4 here; the operator's default is 16). */
    concurrency?: number;
    /** --sync-timeout (default 60 s). */
    syncTimeoutMs?: number;
    /** --max-workers-per-namespace (default 0: half of concurrency). */
    maxWorkersPerNamespace?: number;
    /** The admin's bounds on what a namespace controls (--max-template-bytes and friends); default DEFAULT_LIMITS. */
    limits?: Limits;
    /** --provider-connect-timeout and --provider-request-timeout (default 3 s and 10 s). */
    providerTimeouts?: { connectMs: number; requestMs: number };
    /** Active-active sharding with these shards (see ManagerOptions.sharding). */
    sharding?: ManagerOptions['sharding'];
  } = {},
): Promise<RunningOperator> {
  await installCrds(cluster);
  await ensureNamespace(adminClient(cluster), OPERATOR_NAMESPACE);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0),
      );
      cb();
    },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  // storePolicy and providerTimeouts: the ManagerOptions fields the controller wires into every ProviderContext.
  const managerOptions: ManagerOptions & ProviderWiring = {
    kubeConfig: options.kubeConfig ?? cluster.kubeConfig(),
    logger: createLogger('debug', sink),
    metrics,
    namespaces: options.namespaces ?? [],
    operatorNamespace: OPERATOR_NAMESPACE,
    concurrency: options.concurrency ?? 4,
    syncTimeoutMs: options.syncTimeoutMs,
    maxWorkersPerNamespace: options.maxWorkersPerNamespace,
    leaderElection: options.leaderElection ?? false,
    leaseName: options.leaseName ?? 'secretsync-leader',
    identity: options.identity ?? 'test',
    metricsAddress: '127.0.0.1:0',
    hmacSecretName: 'secretsync-hmac-key',
    qps: 500,
    burst: 1000,
    storeCheckIntervalMs: 2_000,
    maxConcurrentRestarts: options.maxConcurrentRestarts,
    minRefreshIntervalMs: options.minRefreshIntervalMs ?? 0,
    storePolicy: options.storePolicy ?? testStorePolicy(),
    providerTimeouts: options.providerTimeouts ?? { connectMs: 3000, requestMs: 10_000 },
    limits: options.limits,
    ...(options.sharding ? { sharding: options.sharding } : {}),
  };
  const manager = new Manager(managerOptions);
  await manager.start();
  return {
    manager,
    metrics,
    logs,
    stop: () => manager.stop(),
    scrape: async () => {
      const res = await fetch(`http://127.0.0.1:${manager.port}/metrics`);
      return res.text();
    },
  };
}

export interface LocalStoreFixture {
  dir: string;
  masterKey: Buffer;
  store: LocalStore;
  cleanup(): void;
}

/**
 * A local store directory and its master key Secret in `namespace`. The
 * directory is in <tmpdir>/<namespace>, the namespace's own directory of the
 * test operator's --local-store-root (a namespaced store may use no other).
 */
export async function createLocalStore(
  client: KubeClient,
  namespace: string,
  secretName = 'master-key',
): Promise<LocalStoreFixture> {
  mkdirSync(join(tmpdir(), namespace), { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), namespace, 'secretsync-store-'));
  const masterKey = randomBytes(32);
  await client.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secretName },
      data: { 'master-key': masterKey.toString('base64') },
    },
  });
  return {
    dir,
    masterKey,
    store: new LocalStore(dir, masterKey),
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
      // The namespace's directory too, once its last store is gone.
      const parent = join(tmpdir(), namespace);
      if (existsSync(parent) && readdirSync(parent).length === 0) rmSync(parent, { recursive: true });
    },
  };
}

export async function createSecretStore(
  client: KubeClient,
  namespace: string,
  name: string,
  dir: string,
  secretName = 'master-key',
): Promise<void> {
  await client.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'SecretStore',
      metadata: { name },
      spec: { provider: { local: { path: dir, masterKeySecretRef: { name: secretName } } } },
    },
  });
}

export interface MotoSecretsManagerStoreOptions {
  /** Default: the shared moto's region. */
  region?: string;
  /** Default: the shared moto's endpoint. */
  endpoint?: string;
  /** More fields of spec.provider.awsSecretsManager (events, failover, circuitBreaker, ...). */
  extra?: Partial<AwsSecretsManagerProviderSpec>;
}

/**
 * A Secrets Manager SecretStore on the shared moto with static credentials:
 * moto accepts any key, but the operator needs some, so they come from an
 * `aws-creds` Secret in `namespace` (made here unless it exists, so several
 * stores of a namespace, or a Parameter Store beside it, can share it).
 */
export async function createMotoSecretsManagerStore(
  client: KubeClient,
  namespace: string,
  name: string,
  options: MotoSecretsManagerStoreOptions = {},
): Promise<void> {
  try {
    await client.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'aws-creds' },
        stringData: { 'access-key-id': 'testing', 'secret-access-key': 'testing' },
      },
    });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  await client.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'SecretStore',
      metadata: { name },
      spec: {
        provider: {
          awsSecretsManager: {
            region: options.region ?? sharedMoto().region,
            endpoint: options.endpoint ?? sharedMoto().endpoint,
            auth: {
              secretRef: {
                accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id' },
                secretAccessKeySecretRef: { name: 'aws-creds', key: 'secret-access-key' },
              },
            },
            ...options.extra,
          },
        },
      },
    },
  });
}

export async function createManagedSecret(
  client: KubeClient,
  namespace: string,
  ms: { metadata: { name: string; annotations?: Record<string, string> }; spec: ManagedSecret['spec'] },
): Promise<void> {
  await client.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`, {
    body: { apiVersion: API_VERSION, kind: 'ManagedSecret', ...ms },
  });
}

export function getManagedSecret(client: KubeClient, namespace: string, name: string): Promise<ManagedSecret> {
  return client.get<ManagedSecret>(`/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/${name}`);
}

export async function getSecret(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<SecretObject | undefined> {
  try {
    return await client.get<SecretObject>(`/api/v1/namespaces/${namespace}/secrets/${name}`);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export const decoded = (secret: SecretObject | undefined): Record<string, string> =>
  Object.fromEntries(
    Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );

export function readyOf(ms: ManagedSecret | undefined): Condition | undefined {
  return ms?.status?.conditions?.find((c) => c.type === 'Ready');
}

/** Waits until the ManagedSecret's Ready condition has this status (and reason, if given). */
export async function waitForReady(
  client: KubeClient,
  namespace: string,
  name: string,
  status: 'True' | 'False',
  reason?: string,
  timeoutMs = 15_000,
): Promise<ManagedSecret> {
  return waitFor(
    `ManagedSecret ${namespace}/${name} Ready=${status}${reason ? ` (${reason})` : ''}`,
    async () => {
      const ms = await getManagedSecret(client, namespace, name);
      const ready = readyOf(ms);
      return ready?.status === status &&
        (!reason || ready.reason === reason) &&
        ms.status?.observedGeneration === ms.metadata.generation
        ? ms
        : undefined;
    },
    timeoutMs,
    100,
  );
}

/** Waits until the Secret exists and its decoded data satisfies `check`. */
export async function waitForSecretData(
  client: KubeClient,
  namespace: string,
  name: string,
  check: (data: Record<string, string>) => boolean,
  timeoutMs = 15_000,
): Promise<SecretObject> {
  return waitFor(
    `Secret ${namespace}/${name} with the expected data`,
    async () => {
      const secret = await getSecret(client, namespace, name);
      return secret && check(decoded(secret)) ? secret : undefined;
    },
    timeoutMs,
    100,
  );
}

export async function listEvents(client: KubeClient, namespace: string): Promise<KubeObject[]> {
  return (await client.list<KubeObject>(`/api/v1/namespaces/${namespace}/events`)).items;
}

export interface OperatorProcess {
  child: ChildProcess;
  /** Whole log lines (JSON) from stdout and stderr, in arrival order. */
  lines: string[];
}

/**
 * The operator as its own process, watching `namespaces`: node itself with the
 * tsx loader, not the tsx wrapper, so that a signal reaches the operator rather
 * than a parent that relays it (SIGKILL on the wrapper would leave it running).
 */
export function spawnOperatorProcess(
  cluster: TestCluster,
  namespaces: string[],
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): OperatorProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'src', 'cli', 'index.ts'),
      'run',
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--namespaces',
      namespaces.join(','),
      '--operator-namespace',
      OPERATOR_NAMESPACE,
      '--metrics-address',
      '127.0.0.1:0',
      ...testStorePolicyArgs(),
      ...extraArgs,
    ],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Tests refresh every second or two: no admin floor unless a test sets one.
      env: { ...process.env, SECRETSYNC_LOG_LEVEL: 'info', SECRETSYNC_MIN_REFRESH_INTERVAL: '0', ...env },
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
  return { child, lines };
}

/**
 * Refuses every status write of the ManagedSecret `namespace/name` (a
 * ValidatingAdmissionPolicy, which binds the admin too: what a lost or refused
 * status patch leaves) until the returned function lifts it. Both wait until the
 * API server applies the change: a probe status patch is refused, or accepted again.
 */
export async function refuseStatusWrites(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<() => Promise<void>> {
  const policy = uniqueName('refuse-status');
  const vap = '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies';
  const bindings = '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings';
  await client.request('POST', vap, {
    body: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: policy },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            { apiGroups: [GROUP], apiVersions: ['*'], operations: ['UPDATE'], resources: ['managedsecrets/status'] },
          ],
        },
        validations: [
          { expression: `object.metadata.name != '${name}'`, message: 'status writes refused by the test' },
        ],
      },
    },
  });
  await client.request('POST', bindings, {
    body: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: policy },
      spec: {
        policyName: policy,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } },
      },
    },
  });
  const statusWriteAccepted = () =>
    client
      .request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/${name}/status`, {
        body: { status: {} },
        contentType: 'application/merge-patch+json',
      })
      .then(
        () => true,
        () => false,
      );
  await waitFor('the policy in force', async () => ((await statusWriteAccepted()) ? undefined : true), 30_000, 250);
  return async () => {
    await client.request('DELETE', `${bindings}/${policy}`);
    await client.request('DELETE', `${vap}/${policy}`);
    await waitFor('the policy lifted', async () => ((await statusWriteAccepted()) ? true : undefined), 30_000, 250);
  };
}

/** Successful writes of an operator to the API, of one resource (`secrets`, `managedsecrets/status`, ...) or all. */
export async function kubeWritesOf(metrics: Metrics, resource?: string): Promise<number> {
  const values = (await metrics.kubeWrites.get()).values;
  return values
    .filter((v) => resource === undefined || v.labels.resource === resource)
    .reduce((n, v) => n + v.value, 0);
}
