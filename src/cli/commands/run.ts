import { Option, type Command } from 'commander';
import { hostname } from 'node:os';
import { DEFAULT_LIMITS, type Limits } from '../../api/limits.js';
import { Manager } from '../../controller/manager.js';
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
  maxTemplateBytes: number;
  maxSecretBytes: number;
  maxKeysPerSecret: number;
  maxFindEntries: number;
  maxValueBytes: number;
}

/** The bounds on what a namespace controls, from the --max-* flags. */
export function limitsFromFlags(flags: RunFlags): Limits {
  return {
    maxTemplateBytes: flags.maxTemplateBytes,
    maxSecretBytes: flags.maxSecretBytes,
    maxKeysPerSecret: flags.maxKeysPerSecret,
    maxFindEntries: flags.maxFindEntries,
    maxValueBytes: flags.maxValueBytes,
  };
}

/** The --max-* flags: what each bounds, and its default. */
const LIMIT_FLAGS: readonly { flag: string; env: string; description: string; value: number }[] = [
  {
    flag: '--max-template-bytes',
    env: 'SECRETSYNC_MAX_TEMPLATE_BYTES',
    description: 'UTF-8 bytes of all target.template.data sources of one ManagedSecret (more: TemplateTooLarge)',
    value: DEFAULT_LIMITS.maxTemplateBytes,
  },
  {
    flag: '--max-secret-bytes',
    env: 'SECRETSYNC_MAX_SECRET_BYTES',
    description: 'UTF-8 bytes of the keys and values of one Secret, fetched or rendered (more: SecretTooLarge)',
    value: DEFAULT_LIMITS.maxSecretBytes,
  },
  {
    flag: '--max-keys-per-secret',
    env: 'SECRETSYNC_MAX_KEYS_PER_SECRET',
    description: 'keys in one Secret (more: TooManyKeys)',
    value: DEFAULT_LIMITS.maxKeysPerSecret,
  },
  {
    flag: '--max-find-entries',
    env: 'SECRETSYNC_MAX_FIND_ENTRIES',
    description: 'entries one dataFrom.find may match; listing stops past it (more: TooManyEntries)',
    value: DEFAULT_LIMITS.maxFindEntries,
  },
  {
    flag: '--max-value-bytes',
    env: 'SECRETSYNC_MAX_VALUE_BYTES',
    description: 'UTF-8 bytes of one value read from a backend (more: ValueTooLarge)',
    value: DEFAULT_LIMITS.maxValueBytes,
  },
];

/** One --max-* flag as a commander Option: a positive integer, from the flag or its environment variable. */
function limitOption(flag: string): Option {
  const spec = LIMIT_FLAGS.find((f) => f.flag === flag);
  if (!spec) throw new Error(`no limit flag ${flag}`);
  return new Option(`${flag} <n>`, spec.description).env(spec.env).default(spec.value).argParser(positiveInt(flag));
}

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
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
      new Option('--max-concurrent-restarts <n>', 'rollout restarts in flight at once, cluster-wide (the rest wait)')
        .env('SECRETSYNC_MAX_CONCURRENT_RESTARTS')
        .default(10)
        .argParser(positiveInt('--max-concurrent-restarts')),
    )
    .addOption(limitOption('--max-template-bytes'))
    .addOption(limitOption('--max-secret-bytes'))
    .addOption(limitOption('--max-keys-per-secret'))
    .addOption(limitOption('--max-find-entries'))
    .addOption(limitOption('--max-value-bytes'))
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
    limits: limitsFromFlags(flags),
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
