import { Option, type Command } from 'commander';
import { hostname } from 'node:os';
import { Manager } from '../../controller/manager.js';
import { parseDuration } from '../../controller/schedule.js';
import { createLogger, type LogLevel } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { startReplicationOnLeader } from '../../replication/run.js';
import type { CliIo } from '../main.js';
import { loadKubeConfig } from '../../kube/config.js';

export interface RunFlags {
  kubeconfig?: string;
  namespaces: string;
  operatorNamespace: string;
  concurrency: number;
  metricsAddress: string;
  leaderElect: boolean;
  leaseName: string;
  identity?: string;
  logLevel: LogLevel;
  hmacSecret: string;
  kubeQps: number;
  kubeBurst: number;
  allowOperatorIdentityForNamespacedStores: boolean;
  maxConcurrentRestarts: number;
  clusterName: string;
  replication: boolean;
  kubeRequestTimeout: number;
  kubeConnectTimeout: number;
  watchIdleTimeout: number;
}

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
};

/** A Go-style duration above zero, in milliseconds. */
const positiveDuration = (name: string) => (value: string) => {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    throw new Error(`${name} must be a duration such as 30s or 1m30s, got "${value}"`);
  }
  if (ms <= 0) throw new Error(`${name} must be longer than 0, got "${value}"`);
  return ms;
};

const bool = (value: string) => {
  if (['true', '1', 'yes'].includes(value.toLowerCase())) return true;
  if (['false', '0', 'no'].includes(value.toLowerCase())) return false;
  throw new Error(`expected true or false, got "${value}"`);
};

const labelValue = (name: string) => (value: string) => {
  if (!/^[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?$/.test(value))
    throw new Error(`${name} must be a label value (at most 63 letters, digits, -, _ and .), got "${value}"`);
  return value;
};

/** `secretsync run`: the operator. Every flag can also come from the environment variable shown in --help. */
export function registerRunCommand(program: Command, _io: CliIo): void {
  program
    .command('run')
    .description('run the operator')
    .addOption(
      new Option(
        '--kubeconfig <path>',
        'kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)',
      ).env('KUBECONFIG'),
    )
    .addOption(
      new Option('--namespaces <list>', 'comma-separated namespaces to watch; empty watches the whole cluster')
        .env('SECRETSYNC_NAMESPACES')
        .default(''),
    )
    .addOption(
      new Option('--operator-namespace <ns>', "the operator's own namespace (its Lease and HMAC key Secret)")
        .env('SECRETSYNC_OPERATOR_NAMESPACE')
        .default(process.env.POD_NAMESPACE ?? 'secretsync-system'),
    )
    .addOption(
      new Option('--concurrency <n>', 'ManagedSecrets synced in parallel')
        .env('SECRETSYNC_CONCURRENCY')
        .default(16)
        .argParser(positiveInt('--concurrency')),
    )
    .addOption(
      new Option('--metrics-address <host:port>', 'where /healthz, /readyz and /metrics are served')
        .env('SECRETSYNC_METRICS_ADDRESS')
        .default(':8080'),
    )
    .addOption(
      new Option('--leader-elect <bool>', 'elect a leader among replicas with a Lease')
        .env('SECRETSYNC_LEADER_ELECT')
        .default(true)
        .argParser(bool),
    )
    .addOption(
      new Option('--lease-name <name>', 'name of the leader-election Lease')
        .env('SECRETSYNC_LEASE_NAME')
        .default('secretsync-leader'),
    )
    .addOption(
      new Option('--identity <id>', 'this replica in the Lease (default: POD_NAME or host and pid)').env(
        'SECRETSYNC_IDENTITY',
      ),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['error', 'warn', 'info', 'debug'])
        .env('SECRETSYNC_LOG_LEVEL')
        .default('info'),
    )
    .addOption(
      new Option('--hmac-secret <name>', 'Secret (in the operator namespace) holding the key for synced-data HMACs')
        .env('SECRETSYNC_HMAC_SECRET')
        .default('secretsync-hmac-key'),
    )
    .addOption(
      new Option('--kube-qps <n>', 'sustained Kubernetes API requests per second')
        .env('SECRETSYNC_KUBE_QPS')
        .default(500)
        .argParser(positiveInt('--kube-qps')),
    )
    .addOption(
      new Option(
        '--allow-operator-identity-for-namespaced-stores <bool>',
        "let namespaced SecretStores use the operator's own cloud identity (off: a namespace cannot borrow the operator's power)",
      )
        .env('SECRETSYNC_ALLOW_OPERATOR_IDENTITY_FOR_NAMESPACED_STORES')
        .default(false)
        .argParser(bool),
    )
    .addOption(
      new Option('--kube-burst <n>', 'Kubernetes API request burst')
        .env('SECRETSYNC_KUBE_BURST')
        .default(1000)
        .argParser(positiveInt('--kube-burst')),
    )
    .addOption(
      new Option(
        '--kube-request-timeout <duration>',
        'deadline of one Kubernetes API request, retries included (watches have an idle timeout instead)',
      )
        .env('SECRETSYNC_KUBE_REQUEST_TIMEOUT')
        .default(30_000, '30s')
        .argParser(positiveDuration('--kube-request-timeout')),
    )
    .addOption(
      new Option('--kube-connect-timeout <duration>', 'deadline of each connection to the API server (TCP and TLS)')
        .env('SECRETSYNC_KUBE_CONNECT_TIMEOUT')
        .default(5_000, '5s')
        .argParser(positiveDuration('--kube-connect-timeout')),
    )
    .addOption(
      new Option(
        '--watch-idle-timeout <duration>',
        'restart a watch that brought no event and no bookmark for this long (the API server bookmarks about once a minute)',
      )
        .env('SECRETSYNC_WATCH_IDLE_TIMEOUT')
        .default(90_000, '90s')
        .argParser(positiveDuration('--watch-idle-timeout')),
    )
    .addOption(
      new Option('--max-concurrent-restarts <n>', 'rollout restarts in flight at once, cluster-wide (the rest wait)')
        .env('SECRETSYNC_MAX_CONCURRENT_RESTARTS')
        .default(10)
        .argParser(positiveInt('--max-concurrent-restarts')),
    )
    .addOption(
      new Option(
        '--cluster-name <name>',
        "this cluster's name, written on the DR copies that ReplicationTargets make (a label value)",
      )
        .env('SECRETSYNC_CLUSTER_NAME')
        .default('default')
        .argParser(labelValue('--cluster-name')),
    )
    .addOption(
      new Option('--replication <bool>', 'run ReplicationTargets (on the leader): copy stores to DR clusters')
        .env('SECRETSYNC_REPLICATION')
        .default(true)
        .argParser(bool),
    )
    .action(async (flags: RunFlags) => {
      const code = await runOperator(flags);
      if (code !== 0) throw new Error('the operator lost its leader Lease and stopped');
    });
}

/** Runs until SIGTERM/SIGINT (draining) or until the leader Lease is lost; returns the exit code. */
export async function runOperator(flags: RunFlags): Promise<number> {
  const logger = createLogger(flags.logLevel);
  const kubeConfig = await loadKubeConfig(flags.kubeconfig);
  const namespaces = flags.namespaces
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const metrics = new Metrics();
  const manager = new Manager({
    kubeConfig,
    logger,
    metrics,
    namespaces,
    operatorNamespace: flags.operatorNamespace,
    concurrency: flags.concurrency,
    leaderElection: flags.leaderElect,
    leaseName: flags.leaseName,
    identity: flags.identity ?? process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
    metricsAddress: flags.metricsAddress,
    hmacSecretName: flags.hmacSecret,
    qps: flags.kubeQps,
    burst: flags.kubeBurst,
    allowOperatorIdentityForNamespacedStores: flags.allowOperatorIdentityForNamespacedStores,
    maxConcurrentRestarts: flags.maxConcurrentRestarts,
    kubeRequestTimeoutMs: flags.kubeRequestTimeout,
    kubeConnectTimeoutMs: flags.kubeConnectTimeout,
    watchIdleTimeoutMs: flags.watchIdleTimeout,
  });
  const onSignal = () => void manager.stop();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await manager.start();
    if (flags.replication) {
      startReplicationOnLeader(manager, {
        kubeConfig,
        logger,
        metrics,
        clusterName: flags.clusterName,
        operatorNamespace: flags.operatorNamespace,
        namespaces,
      });
    }
    const why = await manager.done;
    return why === 'lost' ? 1 : 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
