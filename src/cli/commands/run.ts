import { Option, type Command } from 'commander';
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import { DEFAULT_LIMITS, type Limits } from '../../api/limits.js';
import { Manager, type ManagerOptions } from '../../controller/manager.js';
import { DEFAULT_MIN_REFRESH_INTERVAL_MS, parseDuration } from '../../controller/schedule.js';
import { parseAllowedEndpoints } from '../../providers/policy.js';
import type { ProviderTimeouts, StorePolicy } from '../../providers/provider.js';
import { createLogger, type LogLevel } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { startReplicationOnLeader } from '../../replication/run.js';
import type { CliIo } from '../main.js';
import { addExamples } from '../examples.js';
import { runEventsWebhook, type RunningWebhook } from '../../events/webhook.js';
import { labelPodWhileLeading, type LeaderPodLabel } from '../../controller/leader-pod-label.js';
import { KubeClient } from '../../kube/client.js';
import { loadKubeConfig } from '../../kube/config.js';
import { DEFAULT_SHARD_COUNT, MAX_SHARD_COUNT, type ShardOwnership } from '../../sharding/ownership.js';
import { parseShardList, StaticShardOwnership } from '../../sharding/static.js';
import { ShardCoordinator } from '../../sharding/coordinator.js';

export interface RunFlags {
  kubeconfig?: string;
  namespaces: string;
  operatorNamespace: string;
  concurrency: number;
  metricsAddress: string;
  leaderElect: boolean;
  leaseName: string;
  identity?: string;
  /** Milliseconds (parsed from a duration such as 15s). */
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  logLevel: LogLevel;
  hmacSecret: string;
  kubeQps: number;
  kubeBurst: number;
  allowOperatorIdentityForNamespacedStores: boolean;
  maxConcurrentRestarts: number;
  rolloutRestarts: boolean;
  clusterName: string;
  replication: boolean;
  /** Milliseconds (parsed from a duration). */
  minRefreshInterval: number;
  /** 0 = half of --concurrency, at least 1. */
  maxWorkersPerNamespace: number;
  /** Milliseconds. */
  providerConnectTimeout: number;
  /** Milliseconds. */
  providerRequestTimeout: number;
  allowedEndpoints: string[];
  /** Empty: namespaced local stores are refused. */
  localStoreRoot: string;
  maxTemplateBytes: number;
  maxSecretBytes: number;
  maxKeysPerSecret: number;
  maxFindEntries: number;
  maxValueBytes: number;
  /** Milliseconds. */
  kubeRequestTimeout: number;
  /** Milliseconds. */
  kubeConnectTimeout: number;
  /** Milliseconds. */
  watchIdleTimeout: number;
  /** Milliseconds. */
  syncTimeout: number;
  /** 0: the events webhook is off. */
  eventsWebhookPort: number;
  eventsWebhookSecret: string;
  eventsIbmEnSecret: string;
  /** Keep `secretsync.io/leader: "true"` on the leader's own Pod (POD_NAME, POD_NAMESPACE), for the webhook Service. */
  labelLeaderPod: boolean;
  /** Active-active sharding of the ManagedSecrets between replicas. */
  sharding: boolean;
  shards: number;
  /** Static shard assignment (`0,1,4-7`), for manual runs; undefined: the shard coordinator's Leases decide. */
  shardsOwned?: string;
}

/**
 * What the manager passes into every ProviderContext (`policy`, `timeouts`).
 * ManagerOptions takes these once the controller wires them through.
 */
export interface ProviderWiring {
  storePolicy: StorePolicy;
  providerTimeouts: ProviderTimeouts;
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

const nonNegativeInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (0 or more), got "${value}"`);
  return n;
};

const duration = (name: string) => (value: string) => {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
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

const absoluteDirOrEmpty = (name: string) => (value: string) => {
  const dir = value.trim();
  if (dir !== '' && !isAbsolute(dir)) throw new Error(`${name} must be an absolute directory, got "${value}"`);
  return dir;
};

const labelValue = (name: string) => (value: string) => {
  if (!/^[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?$/.test(value))
    throw new Error(`${name} must be a label value (at most 63 letters, digits, -, _ and .), got "${value}"`);
  return value;
};

/** `secretsync run`: the operator. Every flag can also come from the environment variable shown in --help. */
export function registerRunCommand(program: Command, _io: CliIo): void {
  const run = program
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
      new Option(
        '--max-workers-per-namespace <n>',
        'workers one namespace may hold while other namespaces have work waiting (0: half of --concurrency, at least 1); alone, a namespace may use all workers but one, kept idle for the others',
      )
        .env('SECRETSYNC_MAX_WORKERS_PER_NAMESPACE')
        .default(0)
        .argParser(nonNegativeInt('--max-workers-per-namespace')),
    )
    .addOption(
      new Option(
        '--min-refresh-interval <duration>',
        'no ManagedSecret refreshes more often than this (a shorter refreshInterval or a more frequent refreshSchedule is slowed to it); 0 for no floor',
      )
        .env('SECRETSYNC_MIN_REFRESH_INTERVAL')
        .default(DEFAULT_MIN_REFRESH_INTERVAL_MS, '10s')
        .argParser(duration('--min-refresh-interval')),
    )
    .addOption(
      new Option(
        '--events-webhook-port <port>',
        'serve the signed change-notification webhook (POST /notify) on this port; 0: off',
      )
        .env('SECRETSYNC_EVENTS_WEBHOOK_PORT')
        .default(0)
        .argParser(nonNegativeInt('--events-webhook-port')),
    )
    .addOption(
      new Option(
        '--events-webhook-secret <name>',
        "Secret (in the operator namespace) whose key 'key' (at least 32 bytes) signs webhook notifications",
      )
        .env('SECRETSYNC_EVENTS_WEBHOOK_SECRET')
        .default('secretsync-events-webhook'),
    )
    .addOption(
      new Option(
        '--events-ibm-en-secret <name>',
        "also accept IBM Cloud Event Notifications on the webhook (POST /ibm-event-notifications), authenticated by the key 'token' (at least 32 bytes) of this Secret in the operator namespace; empty: off",
      )
        .env('SECRETSYNC_EVENTS_IBM_EN_SECRET')
        .default(''),
    )
    .addOption(
      new Option(
        '--label-leader-pod',
        "keep the label secretsync.io/leader=true on the leader's own Pod (POD_NAME, POD_NAMESPACE), so a Service can select the replica that answers the webhook",
      )
        .env('SECRETSYNC_LABEL_LEADER_POD')
        .default(false),
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
      new Option(
        '--lease-duration <duration>',
        'how long a standby waits for the leader to renew its Lease before taking over',
      )
        .env('SECRETSYNC_LEASE_DURATION')
        .default(15_000, '15s')
        .argParser(duration('--lease-duration')),
    )
    .addOption(
      new Option(
        '--renew-deadline <duration>',
        'the leader stops writing when it could not renew its Lease for this long (less than --lease-duration)',
      )
        .env('SECRETSYNC_RENEW_DEADLINE')
        .default(10_000, '10s')
        .argParser(duration('--renew-deadline')),
    )
    .addOption(
      new Option(
        '--retry-period <duration>',
        'time between Lease acquire/renew attempts, and the longest one Lease request may take (less than --renew-deadline)',
      )
        .env('SECRETSYNC_RETRY_PERIOD')
        .default(2_000, '2s')
        .argParser(duration('--retry-period')),
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
      new Option(
        '--sync-timeout <duration>',
        'deadline of one ManagedSecret sync (backend reads, decryption, the Secret write and the status), and of one store check',
      )
        .env('SECRETSYNC_SYNC_TIMEOUT')
        .default(60_000, '60s')
        .argParser(positiveDuration('--sync-timeout')),
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
        '--rollout-restarts <bool>',
        'restart workloads whose Secret data changed (spec.rolloutRestart); needs RBAC to patch Deployments, StatefulSets and DaemonSets',
      )
        .env('SECRETSYNC_ROLLOUT_RESTARTS')
        .default(true)
        .argParser(bool),
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
    .addOption(
      new Option('--provider-connect-timeout <duration>', 'how long a connection to a backend may take to open')
        .env('SECRETSYNC_PROVIDER_CONNECT_TIMEOUT')
        .default(3000, '3s')
        .argParser(positiveDuration('--provider-connect-timeout')),
    )
    .addOption(
      new Option(
        '--provider-request-timeout <duration>',
        'how long one backend request attempt may wait for its answer (the SDK makes at most 3 attempts)',
      )
        .env('SECRETSYNC_PROVIDER_REQUEST_TIMEOUT')
        .default(10_000, '10s')
        .argParser(positiveDuration('--provider-request-timeout')),
    )
    .addOption(
      new Option(
        '--allowed-endpoints <list>',
        'custom endpoints namespaced SecretStores may name: comma-separated URL prefixes ' +
          '(https://vpce-1.kms.eu-west-1.vpce.amazonaws.com) or host suffixes (*.example.com); empty: none',
      )
        .env('SECRETSYNC_ALLOWED_ENDPOINTS')
        .default([], '')
        .argParser(parseAllowedEndpoints),
    )
    .addOption(
      new Option(
        '--local-store-root <dir>',
        'a namespaced local SecretStore must be inside <dir>/<its namespace>; empty: namespaced local stores are refused',
      )
        .env('SECRETSYNC_LOCAL_STORE_ROOT')
        .default('')
        .argParser(absoluteDirOrEmpty('--local-store-root')),
    )
    .addOption(
      new Option(
        '--sharding <bool>',
        'run replicas active-active: each caches, syncs and writes only the ManagedSecrets of the shards it holds (leader election stays for stores and replication)',
      )
        .env('SECRETSYNC_SHARDING')
        .default(false)
        .argParser(bool),
    )
    .addOption(
      new Option(
        '--shards <n>',
        `virtual shards the ManagedSecrets are split into (at most ${MAX_SHARD_COUNT}; every replica must agree)`,
      )
        .env('SECRETSYNC_SHARDS')
        .default(DEFAULT_SHARD_COUNT)
        .argParser((value: string) => {
          const n = positiveInt('--shards')(value);
          if (n > MAX_SHARD_COUNT) throw new Error(`--shards must be at most ${MAX_SHARD_COUNT}, got "${value}"`);
          return n;
        }),
    )
    .addOption(
      new Option(
        '--shards-owned <list>',
        'with --sharding: hold exactly these shards (comma-separated numbers and ranges, like 0-7,12), assigned by hand instead of through Leases',
      ).env('SECRETSYNC_SHARDS_OWNED'),
    )
    .action(async (flags: RunFlags) => {
      const code = await runOperator(flags);
      if (code !== 0) throw new Error('the operator lost its leader Lease and stopped');
    });
  addExamples(run, [
    {
      command: 'secretsync run --kubeconfig ~/.kube/config --leader-elect false',
      explain: 'run the operator outside the cluster, against the current kubeconfig context, alone',
    },
    {
      command: 'secretsync run --namespaces team-a,team-b --log-level debug',
      explain:
        'watch two namespaces only, with debug logs (every flag also reads the $SECRETSYNC_… variable in its help)',
    },
    {
      command: 'secretsync run --local-store-root /var/lib/secretsync/store --metrics-address 0.0.0.0:8080',
      explain: 'in the cluster: local stores below one directory, metrics and probes on port 8080',
    },
  ]);
}

/**
 * Which shards this replica holds, when sharding is on. The seam for the
 * shard coordinator (Leases, src/sharding/coordinator.ts): without
 * --shards-owned, its ShardOwnership is built here.
 */
export function shardOwnershipFromFlags(
  flags: Pick<RunFlags, 'sharding' | 'shards' | 'shardsOwned'>,
  coordinate?: (shardCount: number) => ShardCoordinator,
): ShardOwnership | undefined {
  if (!flags.sharding) {
    if (flags.shardsOwned !== undefined) throw new Error('--shards-owned needs --sharding true');
    return undefined;
  }
  if (flags.shardsOwned !== undefined)
    return new StaticShardOwnership(flags.shards, parseShardList(flags.shardsOwned, flags.shards));
  if (!coordinate)
    throw new Error('--sharding without --shards-owned claims shards through Leases: no cluster to claim them in');
  return coordinate(flags.shards);
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
  const identity = flags.identity ?? process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
  const options: ManagerOptions & ProviderWiring = {
    kubeConfig,
    logger,
    metrics,
    namespaces,
    operatorNamespace: flags.operatorNamespace,
    concurrency: flags.concurrency,
    leaderElection: flags.leaderElect,
    leaseName: flags.leaseName,
    identity,
    leaseDurationMs: flags.leaseDuration,
    renewDeadlineMs: flags.renewDeadline,
    retryPeriodMs: flags.retryPeriod,
    metricsAddress: flags.metricsAddress,
    hmacSecretName: flags.hmacSecret,
    qps: flags.kubeQps,
    burst: flags.kubeBurst,
    allowOperatorIdentityForNamespacedStores: flags.allowOperatorIdentityForNamespacedStores,
    maxConcurrentRestarts: flags.maxConcurrentRestarts,
    rolloutRestarts: flags.rolloutRestarts,
    minRefreshIntervalMs: flags.minRefreshInterval,
    maxWorkersPerNamespace: flags.maxWorkersPerNamespace,
    limits: limitsFromFlags(flags),
    kubeRequestTimeoutMs: flags.kubeRequestTimeout,
    kubeConnectTimeoutMs: flags.kubeConnectTimeout,
    watchIdleTimeoutMs: flags.watchIdleTimeout,
    syncTimeoutMs: flags.syncTimeout,
    ...providerWiring(flags),
  };
  // Without --shards-owned, shards are claimed through Leases (one per shard, one per replica) in the
  // operator's namespace, with the leader election's timing: a replica that cannot renew stops writing
  // a shard before another may take it.
  let coordinator: ShardCoordinator | undefined;
  const ownership = shardOwnershipFromFlags(
    flags,
    (shardCount) =>
      (coordinator = new ShardCoordinator(
        kubeConfig,
        {
          namespace: flags.operatorNamespace,
          identity,
          shardCount,
          leaseDurationMs: flags.leaseDuration,
          renewDeadlineMs: flags.renewDeadline,
          retryPeriodMs: flags.retryPeriod,
          userAgent: 'secretsync-shards',
        },
        logger,
      )),
  );
  if (ownership) options.sharding = { ownership };
  const manager = new Manager(options);
  const onSignal = () => void manager.stop();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let webhook: RunningWebhook | undefined;
  let leaderLabel: LeaderPodLabel | undefined;
  try {
    // The first pass claims this replica's share before the caches start, so they list its shards once.
    await coordinator?.start();
    await manager.start();
    if (flags.eventsWebhookPort > 0)
      webhook = await runEventsWebhook(manager, {
        port: flags.eventsWebhookPort,
        namespace: flags.operatorNamespace,
        secretName: flags.eventsWebhookSecret,
        ...(flags.eventsIbmEnSecret ? { ibmEventNotificationsSecret: flags.eventsIbmEnSecret } : {}),
        log: logger,
        onAnswer: (code) => metrics.webhookRequests.inc({ code: String(code) }),
      });
    if (flags.labelLeaderPod) {
      const podName = process.env.POD_NAME;
      if (!podName) throw new Error("--label-leader-pod needs POD_NAME (the downward API) to name this replica's Pod");
      leaderLabel = labelPodWhileLeading(
        manager,
        new KubeClient(kubeConfig, {
          requestTimeoutMs: flags.kubeRequestTimeout,
          connectTimeoutMs: flags.kubeConnectTimeout,
          userAgent: 'secretsync-leader-label',
        }),
        { namespace: process.env.POD_NAMESPACE ?? flags.operatorNamespace, podName, log: logger },
      );
    }
    if (flags.replication) {
      startReplicationOnLeader(manager, {
        kubeConfig,
        logger,
        metrics,
        clusterName: flags.clusterName,
        operatorNamespace: flags.operatorNamespace,
        namespaces,
        fence: manager.writeFence,
        kubeRequestTimeoutMs: flags.kubeRequestTimeout,
        kubeConnectTimeoutMs: flags.kubeConnectTimeout,
        watchIdleTimeoutMs: flags.watchIdleTimeout,
      });
    }
    const why = await manager.done;
    return why === 'lost' ? 1 : 0;
  } finally {
    await webhook?.close();
    // Writing has stopped: hand the shards over now rather than after their Leases expire.
    await coordinator?.stop();
    // The label comes off before the process goes (bounded: the Pod may be going anyway).
    if (leaderLabel) await Promise.race([leaderLabel.stopped, new Promise((r) => setTimeout(r, 5_000).unref())]);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/** The provider flags as the manager takes them. */
export function providerWiring(
  flags: Pick<RunFlags, 'allowedEndpoints' | 'localStoreRoot' | 'providerConnectTimeout' | 'providerRequestTimeout'>,
): ProviderWiring {
  return {
    storePolicy: {
      allowedEndpoints: flags.allowedEndpoints,
      localStoreRoot: flags.localStoreRoot === '' ? undefined : flags.localStoreRoot,
    },
    providerTimeouts: { connectMs: flags.providerConnectTimeout, requestMs: flags.providerRequestTimeout },
  };
}
