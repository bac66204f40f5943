import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PerObjectGauge } from './per-object-gauge.js';

/**
 * The operator's Prometheus metrics. Labels are bounded sets (result, reason,
 * provider, operation), with one exception: the last-success timestamp has one
 * series per ManagedSecret (namespace and name, never a value), because "which
 * one is stale" is the question its alert answers.
 */
/**
 * Distinct `endpoint` label values on the request metrics. Instances come from
 * store specs (a primary and at most 4 secondaries each), but every namespace
 * may declare stores: the first hosts seen keep their own series, later ones
 * share "other", so a tenant cannot grow the series without bound.
 */
export const MAX_ENDPOINT_LABELS = 64;

export class Metrics {
  readonly registry = new Registry();

  readonly syncs = new Counter({
    name: 'secretsync_syncs_total',
    help: 'ManagedSecret syncs by result (synced, unchanged, error) and reason',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
  });

  readonly verifiedFromStatus = new Counter({
    name: 'secretsync_managedsecrets_verified_total',
    help: 'ManagedSecrets found in sync without a backend read when first seen (after a start or a shard move): status says Ready for this generation, the Secret holds what status recorded, and the refresh is not due',
    registers: [this.registry],
  });

  readonly syncDuration = new Histogram({
    name: 'secretsync_sync_duration_seconds',
    help: 'Time to reconcile one ManagedSecret',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly queueDepth = new Gauge({
    name: 'secretsync_queue_depth',
    help: 'Keys waiting in the work queue',
    registers: [this.registry],
  });

  readonly eventSourceMessages = new Counter({
    name: 'secretsync_event_source_messages_total',
    help:
      "Messages a store's event source (events.sqs) took from its queue, by outcome: handled (keys passed on), " +
      'ignored (an event that changes nothing the store reads), poison (unreadable, deleted), overflowed (too many ' +
      'keys: the whole store synced), undeleted (the queue refused the delete: it comes back)',
    labelNames: ['provider', 'store', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly changeNotifications = new Counter({
    name: 'secretsync_change_notifications_total',
    help: 'Change notifications by source (watch: a store event source; webhook; relay: from another replica, sharded) and the ManagedSecrets they sent to sync',
    labelNames: ['source', 'what'] as const,
    registers: [this.registry],
  });
  readonly changeRelayEntries = new Counter({
    name: 'secretsync_change_relay_entries_total',
    help:
      'Sharded mode, the change relay between replicas: entries published, applied (from other replicas), ' +
      'fallback (a store relayed whole: too many keys, or a failed write), missed (entries dropped before this ' +
      'replica saw them: every store looked again), write_failed',
    labelNames: ['what'] as const,
    registers: [this.registry],
  });
  readonly webhookRequests = new Counter({
    name: 'secretsync_events_webhook_requests_total',
    help: 'Requests to the events webhook by answer (204 accepted; 400, 401, 404, 405, 413, 429, 503 refused)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly providerRequests = new Counter({
    name: 'secretsync_provider_requests_total',
    help:
      'Backend requests by provider, operation, result and region (the region asked, for Secrets Manager, ' +
      'Parameter Store and KMS Decrypt requests, one per attempt; no region label on other requests) and ' +
      'endpoint (IBM Cloud Secrets Manager: the host of the instance that served it, primary or secondary; ' +
      `at most ${MAX_ENDPOINT_LABELS} hosts, later ones are counted as "other")`,
    labelNames: ['provider', 'operation', 'result', 'region', 'endpoint'] as const,
    registers: [this.registry],
  });

  readonly providerLatency = new Histogram({
    name: 'secretsync_provider_request_duration_seconds',
    help: 'Backend request latency by provider, operation, region and endpoint (as secretsync_provider_requests_total)',
    labelNames: ['provider', 'operation', 'region', 'endpoint'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly providerRetries = new Counter({
    name: 'secretsync_provider_retries_total',
    help: 'Backend requests the AWS SDK retried (throttling, transient errors) before they answered, by provider and operation',
    labelNames: ['provider', 'operation'] as const,
    registers: [this.registry],
  });

  readonly fetchCache = new Counter({
    name: 'secretsync_fetch_cache_total',
    help: 'Remote reads by outcome: hit (served from the shared cache), shared (joined an in-flight read), miss (a backend read)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly kubeWrites = new Counter({
    name: 'secretsync_kube_writes_total',
    help: 'Writes to the Kubernetes API by resource and verb',
    labelNames: ['resource', 'verb'] as const,
    registers: [this.registry],
  });

  readonly eventsDropped = new Counter({
    name: 'secretsync_events_dropped_total',
    help: 'Kubernetes Events not recorded because the Event budget was spent (status conditions still say it)',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: 'secretsync_leader',
    help: '1 while this replica holds the leader Lease',
    registers: [this.registry],
  });

  readonly shardsCached = new Gauge({
    name: 'secretsync_shards_cached',
    help: 'Sharded mode: shards whose ManagedSecrets and Secrets this replica caches and syncs',
    registers: [this.registry],
  });

  readonly managedSecrets = new Gauge({
    name: 'secretsync_managed_secrets',
    help: 'ManagedSecrets by Ready condition status',
    labelNames: ['ready'] as const,
    registers: [this.registry],
  });

  readonly managedSecretsNotReady = new Gauge({
    name: 'secretsync_managed_secrets_not_ready',
    help:
      'ManagedSecrets whose Ready condition is not True, by its reason (NoCondition before the first sync; ' +
      'reasons outside the bounded set are counted as Other)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly storesReady = new Gauge({
    name: 'secretsync_stores',
    help: 'SecretStores and ClusterSecretStores by kind and Ready condition status',
    labelNames: ['kind', 'ready'] as const,
    registers: [this.registry],
  });

  readonly lastCheck = new Gauge({
    name: 'secretsync_oldest_check_age_seconds',
    help: 'Age of the oldest successful check among ManagedSecrets that refresh; freshness without status writes',
    registers: [this.registry],
  });

  /** One series per ManagedSecret: kept outside the registry and written in slices (see per-object-gauge.ts). */
  readonly lastSuccess = new PerObjectGauge(
    'secretsync_managedsecret_last_success_timestamp_seconds',
    'When each ManagedSecret last synced successfully (Unix time); alert on time() minus this',
  );

  /** Families served beside the registry's (by `/metrics`). */
  get perObjectGauges(): readonly PerObjectGauge[] {
    return [this.lastSuccess];
  }

  readonly overdue = new Gauge({
    name: 'secretsync_overdue_managed_secrets',
    help: 'ManagedSecrets whose last successful check is older than twice their refresh interval',
    registers: [this.registry],
  });

  readonly rotations = new Counter({
    name: 'secretsync_rotations_total',
    help: 'Rotations by result (success, error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly rotationDue = new Gauge({
    name: 'secretsync_rotation_next_due_seconds',
    help: 'Seconds until the next due rotation among the ManagedSecrets of a namespace; negative when overdue',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly rolloutRestarts = new Counter({
    name: 'secretsync_rollout_restarts_total',
    help: 'Workload restarts by result (restarted, skipped: already restarted for that data version, error, suppressed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  /** Where replication lags are read from at scrape time (set by the replicator on the leader). */
  replicationLagSource: () => { target: string; seconds: number }[] = () => [];

  readonly replicationLag = new Gauge({
    name: 'secretsync_replication_lag_seconds',
    help: 'Seconds since the DR cluster of a ReplicationTarget was last confirmed to match this cluster',
    labelNames: ['target'] as const,
    registers: [this.registry],
    collect: () => {
      this.replicationLag.reset();
      for (const l of this.replicationLagSource()) this.replicationLag.set({ target: l.target }, l.seconds);
    },
  });

  readonly replicationFailures = new Counter({
    name: 'secretsync_replication_failures_total',
    help: 'Failed replication passes by ReplicationTarget and reason (ClusterUnreachable, Unauthorized, CRDsMissing, ...)',
    labelNames: ['target', 'reason'] as const,
    registers: [this.registry],
  });

  readonly replicationObjects = new Gauge({
    name: 'secretsync_replication_objects',
    help: 'Objects of a ReplicationTarget in sync in its DR cluster after the last successful pass',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  /** Where the per-store request budgets are read from at scrape time. */
  budgetSource: () => { store: string; waiting: number; used: number }[] = () => [];

  readonly budgetWaiting = new Gauge({
    name: 'secretsync_store_budget_waiting',
    help: "Backend requests waiting for the store's request budget (requestsPerSecond)",
    labelNames: ['store'] as const,
    registers: [this.registry],
    collect: () => this.collectBudgets(),
  });

  readonly budgetUsed = new Gauge({
    name: 'secretsync_store_budget_used_total',
    help: "Backend requests that drew from the store's request budget since start",
    labelNames: ['store'] as const,
    registers: [this.registry],
  });

  private collectBudgets(): void {
    this.budgetWaiting.reset();
    this.budgetUsed.reset();
    for (const b of this.budgetSource()) {
      this.budgetWaiting.set({ store: b.store }, b.waiting);
      this.budgetUsed.set({ store: b.store }, b.used);
    }
  }

  /** Where the per-region circuit breakers (AWS `failover`) are read from at scrape time. */
  circuitSource: () => { provider: string; store: string; region: string; endpoint: string; open: boolean }[] =
    () => [];

  readonly failovers = new Counter({
    name: 'secretsync_provider_failovers_total',
    help:
      'Times a store moved to another failover target (to a failover region or endpoint, or back to the primary); ' +
      'from_region equals to_region for a move between two endpoints of one region',
    labelNames: ['provider', 'store', 'from_region', 'to_region'] as const,
    registers: [this.registry],
  });

  readonly circuitOpen = new Gauge({
    name: 'secretsync_provider_circuit_open',
    help:
      "1 while a failover target's circuit breaker is open (the target is skipped until a probe), else 0; " +
      "endpoint is the host of the target's own endpoint, empty for the region's AWS endpoint",
    labelNames: ['provider', 'store', 'region', 'endpoint'] as const,
    registers: [this.registry],
    collect: () => {
      this.circuitOpen.reset();
      for (const c of this.circuitSource()) {
        this.circuitOpen.set(
          { provider: c.provider, store: c.store, region: c.region, endpoint: c.endpoint },
          c.open ? 1 : 0,
        );
      }
    },
  });

  /** AWS SDK answers and errors carry `$metadata.attempts`; every attempt past the first was a retry. */
  private countRetries(provider: string, operation: string, outcome: unknown): void {
    const attempts = (outcome as { $metadata?: { attempts?: number } } | null)?.$metadata?.attempts;
    if (typeof attempts === 'number' && attempts > 1) this.providerRetries.inc({ provider, operation }, attempts - 1);
  }

  /** Endpoint label values given out so far (bounded: a namespace can name any host in its stores). */
  private readonly endpoints = new Set<string>();

  /** The endpoint as a label value: itself while fewer than MAX_ENDPOINT_LABELS hosts were seen, else "other". */
  endpointLabel(endpoint: string): string {
    if (this.endpoints.has(endpoint)) return endpoint;
    if (this.endpoints.size >= MAX_ENDPOINT_LABELS) return 'other';
    this.endpoints.add(endpoint);
    return endpoint;
  }

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'secretsync_' });
  }

  /**
   * Times a backend call and counts it; the call's errors pass through. A
   * region is given by callers that know which one they asked; without one the
   * series carry no region label (so series of regionless providers stay as they were).
   */
  async observeProvider<T>(
    provider: string,
    operation: string,
    call: () => Promise<T>,
    region?: string,
    endpoint?: string,
  ): Promise<T> {
    const where = {
      ...(region ? { region } : {}),
      ...(endpoint ? { endpoint: this.endpointLabel(endpoint) } : {}),
    };
    const end = this.providerLatency.startTimer({ provider, operation, ...where });
    try {
      const value = await call();
      this.providerRequests.inc({ provider, operation, result: 'success', ...where });
      this.countRetries(provider, operation, value);
      return value;
    } catch (err) {
      this.providerRequests.inc({ provider, operation, result: 'error', ...where });
      this.countRetries(provider, operation, err);
      throw err;
    } finally {
      end();
    }
  }
}
