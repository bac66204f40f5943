// The operator, wired: one place that builds the caches, the work queue, the
// reconcilers (ManagedSecrets, stores; rotation as a step of the first),
// leader election and the health/metrics endpoint, and connects watch events
// to queue keys. The work itself is in the reconcilers; see docs/architecture.md.
import { setMaxListeners } from 'node:events';
import {
  ANNOTATION_FORCE_SYNC,
  ANNOTATION_ROTATE_NOW,
  API_VERSION,
  type AnyStore,
  type ManagedSecret,
} from '../api/types.js';
import { DEFAULT_LIMITS, type Limits } from '../api/limits.js';
import { NotShardOwnerError } from '../api/errors.js';
import type { KubeAuth } from '../kube/config.js';
import { abortableSleep, KubeClient, type KubeObject, type WriteFence } from '../kube/client.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { startObservabilityServer } from '../observability/server.js';
import { DEFAULT_PROVIDER_TIMEOUTS, type ProviderTimeouts, type StorePolicy } from '../providers/provider.js';
import { allProviderStats } from '../providers/registry.js';
import { managedSecretOf, type SecretObject } from '../secrets/desired.js';
import { loadOrCreateHmacKey } from '../secrets/hmac.js';
import { ClusterCache, storeKeyOf } from './caches.js';
import { ChangeIndex } from './change-index.js';
import { ChangeRouter, eventsSpecOf } from '../events/change-router.js';
import {
  instanceIdsOfStore,
  keysOfNotifiedSecret,
  VALUE_CHANGING_EVENTS,
  type IbmNotification,
} from '../events/ibm-event-notifications.js';
import { CpuTurns } from './cpu-turns.js';
import { EventRecorder, type EventTarget } from './events.js';
import { FetchCache } from './fetch-cache.js';
import { updateGauges } from './gauges.js';
import { parseQueueKey, queueKey } from './keys.js';
import { LeaderElector } from './leader.js';
import { ManagedSecretReconciler } from './managed-secret-reconciler.js';
import { DEFAULT_MAX_CONCURRENT_RESTARTS, RolloutRestarter } from './rollout.js';
import { Rotator } from './rotation.js';
import { RotationStep } from './rotation-step.js';
import { DEFAULT_MIN_REFRESH_INTERVAL_MS } from './schedule.js';
import { StatusWriter } from './status.js';
import { StoreClients } from './store-clients.js';
import { StoreReconciler } from './store-reconciler.js';
import { namespaceTenant, WorkQueue } from './workqueue.js';
import { ANNOTATION_ADOPT_FROM_ESO } from '../secrets/eso-adoption.js';
import { collectionPaths } from '../kube/informer-group.js';
import { ShardLabeller } from '../sharding/labeller.js';
import {
  ChangeRelay,
  CHANGE_RELAY_NAME,
  configMapRelayClient,
  ibmAliasesOfKey,
  ibmRelayForms,
  relayObjectOf,
} from '../sharding/change-relay.js';
import { Informer } from '../kube/informer.js';
import { LABEL_SHARD, parseShardLabel, shardOf, type ShardOwnership } from '../sharding/ownership.js';

export interface ManagerOptions {
  kubeConfig: KubeAuth;
  logger: Logger;
  metrics: Metrics;
  /** Namespaces to watch; empty means the whole cluster. */
  namespaces: string[];
  /** The operator's own namespace: its Lease and HMAC key Secret live here. */
  operatorNamespace: string;
  concurrency: number;
  leaderElection: boolean;
  leaseName: string;
  identity: string;
  /** Leader election timing (defaults 15 s, 10 s, 2 s): see LeaderElector. */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** HOST:PORT for /healthz, /readyz, /metrics; undefined serves nothing. */
  metricsAddress?: string;
  hmacSecretName: string;
  qps: number;
  burst: number;
  /** How often a store's Ready condition is re-checked. */
  storeCheckIntervalMs?: number;
  /** How long a provider client (and the master key it read) is reused. */
  providerClientTtlMs?: number;
  /** Let namespaced SecretStores use the operator's own cloud identity (default off). */
  allowOperatorIdentityForNamespacedStores?: boolean;
  /** Rollout restarts in flight at once, cluster-wide (default 10). */
  maxConcurrentRestarts?: number;
  /** Whether rollout restarts may patch workloads (default true; the chart turns it off unless enabled). */
  rolloutRestarts?: boolean;
  /** Deadline of one ManagedSecret sync (default 60 s). */
  syncTimeoutMs?: number;
  /** What namespaced stores may reach (default: no custom endpoints, no namespaced local stores). */
  storePolicy?: StorePolicy;
  /** Connect and per-attempt timeouts of every backend client (default 3 s, 10 s). */
  providerTimeouts?: ProviderTimeouts;
  /** --min-refresh-interval: no ManagedSecret refreshes more often (default 10 s; 0 = no floor). */
  minRefreshIntervalMs?: number;
  /** --max-workers-per-namespace: a namespace's workers while others wait (0 = half of concurrency, at least 1). */
  maxWorkersPerNamespace?: number;
  limits?: Limits;
  /** Deadline of one Kubernetes API request, retries included (not watches; default 30 s). */
  kubeRequestTimeoutMs?: number;
  /** Deadline of each connection to the API server, TLS included (default 5 s). */
  kubeConnectTimeoutMs?: number;
  /** A watch that brings no event and no bookmark for this long is restarted (default 90 s). */
  watchIdleTimeoutMs?: number;
  /**
   * Active-active sharding: this replica caches, syncs and writes only the
   * ManagedSecrets of the shards `ownership` says it holds (the shard
   * coordinator's Leases, or a StaticShardOwnership), each write fenced by its
   * shard. Stores, replication and the other cluster-wide singletons stay on
   * the leader (leader election, if on). Undefined: one active replica, as before.
   */
  sharding?: { ownership: ShardOwnership };
  /** Sharded mode: the ConfigMap (operator namespace) that relays change notifications between replicas (default secretsync-changes). */
  changeRelayName?: string;
}

const DEFAULT_SYNC_TIMEOUT_MS = 60_000;
const DEFAULT_STORE_POLICY: StorePolicy = { allowedEndpoints: [], localStoreRoot: undefined };

function eventTarget(obj: AnyStore | ManagedSecret): EventTarget {
  return {
    apiVersion: API_VERSION,
    kind: obj.kind,
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    uid: obj.metadata.uid,
  };
}

export class Manager {
  readonly client: KubeClient;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly queue: WorkQueue;
  private readonly caches: ClusterCache;
  private readonly clients: StoreClients;
  private readonly fetchCache: FetchCache;
  private readonly events: EventRecorder;
  private readonly restarter: RolloutRestarter;
  private readonly managedSecrets: ManagedSecretReconciler;
  private readonly stores: StoreReconciler;
  /** Remote key → ManagedSecrets, per store: what a change event syncs. */
  private readonly changeIndex = new ChangeIndex();
  /** Change events (store event sources, the webhook) → the ManagedSecrets they concern. */
  readonly changes: ChangeRouter;
  private readonly stopping = new AbortController();
  private readonly leader: LeaderElector | undefined;
  /** Sharded mode: which shards this replica holds, and the labeller that gives ManagedSecrets their shard. */
  private readonly ownership: ShardOwnership | undefined;
  private readonly labeller: ShardLabeller | undefined;
  private unsubscribeShards: (() => void) | undefined;
  /** Sharded mode: passes change notifications on to the replicas holding the other shards (see change-relay.ts). */
  private relay:
    { relay: ChangeRelay; informer: Informer<KubeObject>; client: KubeClient; watching: Promise<void> } | undefined;
  private shardRetry: NodeJS.Timeout | undefined;
  private hmacKey: Buffer | undefined;
  private workers: Promise<void>[] = [];
  private server: { close(): Promise<void>; port: number } | undefined;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopRequested = false;
  /** Resolves when the manager stops: 'lost' if the leader Lease was lost, else 'stopped'. */
  readonly done: Promise<'lost' | 'stopped'>;
  private resolveDone!: (why: 'lost' | 'stopped') => void;

  constructor(private readonly options: ManagerOptions) {
    this.log = options.logger;
    this.metrics = options.metrics;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    // Fair across namespaces: one namespace's thousand failing objects cannot take every worker.
    this.queue = new WorkQueue({
      tenantOf: namespaceTenant,
      workers: options.concurrency,
      maxInFlightPerTenant: options.maxWorkersPerNamespace ?? 0,
    });
    // Built first: its fence guards every write of the workers' client; it has a client of its own.
    this.leader = options.leaderElection
      ? new LeaderElector(
          options.kubeConfig,
          {
            namespace: options.operatorNamespace,
            name: options.leaseName,
            identity: options.identity,
            leaseDurationMs: options.leaseDurationMs,
            renewDeadlineMs: options.renewDeadlineMs,
            retryPeriodMs: options.retryPeriodMs,
          },
          options.logger,
        )
      : undefined;
    this.ownership = options.sharding?.ownership;
    this.client = new KubeClient(options.kubeConfig, {
      qps: options.qps,
      burst: options.burst,
      userAgent: 'secretsync',
      // Sharded: replicas write side by side, each sync fenced by its shard (withFence); the leader's
      // fence guards only the singletons' work (stores), in their own scope.
      fence: this.ownership ? undefined : this.leader?.fence,
      requestTimeoutMs: options.kubeRequestTimeoutMs,
      connectTimeoutMs: options.kubeConnectTimeoutMs,
      // The informers' watches take their idle timeout from the client.
      watchIdleTimeoutMs: options.watchIdleTimeoutMs,
    });
    const stopSignal = this.stopping.signal;
    // Every sync in flight listens on it (and lets go when done): many at once is normal, not a leak.
    setMaxListeners(0, stopSignal);
    this.caches = new ClusterCache(this.client, {
      namespaces: options.namespaces,
      maxTemplateBytes: (options.limits ?? DEFAULT_LIMITS).maxTemplateBytes,
      onWatchError: (resource, err) => this.log.warn('watch failed; retrying', { resource, error: errorMessage(err) }),
      ...(this.ownership ? { shardCount: this.ownership.shardCount } : {}),
    });
    this.labeller = this.ownership
      ? new ShardLabeller(this.client, {
          paths: collectionPaths(`/apis/${API_VERSION}`, 'managedsecrets', options.namespaces),
          shardCount: this.ownership.shardCount,
          log: this.log,
          metrics: this.metrics,
          owns: (shard) => this.ownership?.owned().has(shard) === true,
        })
      : undefined;
    this.events = new EventRecorder(this.client, this.log, {
      onDropped: (type) => this.metrics.eventsDropped.inc({ type }),
    });
    const syncTimeoutMs = options.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS;
    this.clients = new StoreClients({
      client: this.client,
      metrics: this.metrics,
      log: this.log,
      clientTtlMs: options.providerClientTtlMs ?? 5 * 60_000,
      connectTimeoutMs: syncTimeoutMs,
      allowOperatorIdentityForNamespacedStores: options.allowOperatorIdentityForNamespacedStores === true,
      policy: options.storePolicy ?? DEFAULT_STORE_POLICY,
      timeouts: options.providerTimeouts ?? DEFAULT_PROVIDER_TIMEOUTS,
      stopSignal,
      onClient: (storeKey, store, client) => this.changes.attach(storeKey, store, client),
      onClose: (storeKey, client) => this.changes.detach(storeKey, client),
    });
    // Budgets and breakers live with the providers; Prometheus reads them at scrape time.
    this.metrics.budgetSource = () => allProviderStats().budgets;
    this.metrics.circuitSource = () => allProviderStats().circuits;
    this.fetchCache = new FetchCache({ onResult: (result) => this.metrics.fetchCache.inc({ result }) });
    this.changes = new ChangeRouter({
      index: this.changeIndex,
      fetchCache: this.fetchCache,
      storeOf: (storeKey) => this.caches.store(storeKey),
      usersOf: (storeKey) => this.caches.usersOf(storeKey),
      resync: (msKey) => this.managedSecrets.storeChanged(msKey),
      reschedule: (msKey) => this.queue.add(msKey),
      recheckStore: (storeKey) => this.queue.add(storeKey),
      emit: (target, type, reason, message) => this.events.emit(target, type, reason, message),
      eventTarget,
      log: this.log,
      onNotified: (source, managedSecrets) => {
        this.metrics.changeNotifications.inc({ source, what: 'notifications' });
        this.metrics.changeNotifications.inc({ source, what: 'managed_secrets' }, managedSecrets);
      },
      // A local store's directory watch runs on every replica: only the other sources (SQS) need relaying.
      onSourceChange: (storeKey, store, keys) => {
        if (store.spec.provider.local) return;
        if (keys === 'all') this.relayToOthers()?.publishAll(storeKey);
        else this.relayToOthers()?.publish(storeKey, keys);
      },
    });
    const status = new StatusWriter(this.client, this.metrics, this.log);
    const patchStatus = (ms: ManagedSecret, s: Record<string, unknown>) => status.patchManagedSecret(ms, s);
    this.restarter = new RolloutRestarter({
      client: this.client,
      log: this.log,
      metrics: this.metrics,
      events: this.events,
      eventTarget,
      patchStatus,
      clearIntent: (ms, version, fence) => status.clearRolloutRestart(ms, version, fence),
      ...(this.ownership ? { shardFence: (ms: ManagedSecret) => this.shardFenceOf(ms) } : {}),
      maxConcurrent: options.maxConcurrentRestarts ?? DEFAULT_MAX_CONCURRENT_RESTARTS,
      enabled: options.rolloutRestarts ?? true,
    });
    const rotation = new RotationStep({
      rotator: new Rotator({
        log: this.log,
        metrics: this.metrics,
        events: this.events,
        eventTarget,
        patchStatus,
        ...(this.ownership
          ? { shardFence: (ms: ManagedSecret) => this.shardFenceOf(ms) }
          : { fence: this.leader?.fence }),
      }),
      caches: this.caches,
      clients: this.clients,
      fetchCache: this.fetchCache,
      log: this.log,
    });
    this.managedSecrets = new ManagedSecretReconciler({
      client: this.client,
      caches: this.caches,
      clients: this.clients,
      fetchCache: this.fetchCache,
      status,
      events: this.events,
      rotation,
      restarter: this.restarter,
      queue: this.queue,
      log: this.log,
      metrics: this.metrics,
      hmacKey: () => {
        if (!this.hmacKey) throw new Error('the HMAC key is not loaded yet');
        return this.hmacKey;
      },
      eventTarget,
      stopSignal,
      cpu: new CpuTurns(),
      settings: {
        syncTimeoutMs,
        minRefreshIntervalMs: options.minRefreshIntervalMs ?? DEFAULT_MIN_REFRESH_INTERVAL_MS,
        limits: options.limits ?? DEFAULT_LIMITS,
      },
      eventsFallbackMs: (ms) => this.changes.fallbackMs(storeKeyOf(ms)),
      readOnFirstSight: (ms) => {
        const resolved = this.caches.resolveStore(ms);
        return 'reason' in resolved || eventsSpecOf(resolved.store) !== undefined;
      },
      ...(this.ownership
        ? {
            sharding: {
              shardOf: (ms: ManagedSecret) => this.shardOfMs(ms),
              signalOf: (ms: ManagedSecret) => this.shardFenceOf(ms).signal,
            },
          }
        : {}),
    });
    this.stores = new StoreReconciler({
      caches: this.caches,
      clients: this.clients,
      status,
      events: this.events,
      queue: this.queue,
      log: this.log,
      eventTarget,
      stopSignal,
      checkIntervalMs: options.storeCheckIntervalMs ?? 5 * 60_000,
      checkTimeoutMs: syncTimeoutMs,
      eventsCondition: (storeKey, store) => this.changes.condition(storeKey, store),
    });
    this.wireEvents();
  }

  /** The shard a ManagedSecret belongs to (sharded mode). */
  private shardOfMs(ms: ManagedSecret): number {
    return shardOf(ms.metadata.namespace ?? '', ms.metadata.name, this.ownership?.shardCount ?? 1);
  }

  private shardFenceOf(ms: ManagedSecret): WriteFence {
    if (!this.ownership) throw new Error('not sharded');
    return this.ownership.fenceFor(this.shardOfMs(ms));
  }

  /**
   * Whether this replica works on a ManagedSecret now: unsharded, always;
   * sharded, when it holds the computed shard and the object carries it (one
   * with a hand-edited label sits in another shard's cache until relabelled).
   */
  private mine(ms: ManagedSecret): boolean {
    if (!this.ownership) return true;
    const shard = this.shardOfMs(ms);
    return (
      this.ownership.owned().has(shard) &&
      parseShardLabel(ms.metadata.labels?.[LABEL_SHARD], this.ownership.shardCount) === shard
    );
  }

  /** Watch events become queue keys; the reconcilers read the world again when they run. */
  private wireEvents(): void {
    const msKey = (ms: ManagedSecret) => queueKey.managedSecret(ms.metadata.namespace ?? '', ms.metadata.name);
    if (this.labeller) {
      const labeller = this.labeller;
      // A valid shard number that is not the computed one (hand-edited): the replica holding that shard relabels it.
      this.caches.managedSecrets.on({
        add: (ms) => labeller.label(ms),
        update: (old, cur) => {
          labeller.label(cur);
          // Relabelled into a shard held here: a pass that saw the old label skipped it.
          if (old.metadata.labels?.[LABEL_SHARD] !== cur.metadata.labels?.[LABEL_SHARD]) this.queue.add(msKey(cur));
        },
      });
      // A lost shard's objects leave the cache without being deleted: forget them here, keep the objects.
      this.caches.managedSecrets.onEvict((ms) => {
        this.changeIndex.remove(msKey(ms));
        this.managedSecrets.forget(msKey(ms), ms);
      });
    }
    // The change index follows the cache, before the handlers below queue anything.
    this.caches.managedSecrets.on({
      add: (ms) => this.changeIndex.set(ms),
      update: (old, cur) => {
        if (old.metadata.generation !== cur.metadata.generation || old.metadata.uid !== cur.metadata.uid)
          this.changeIndex.set(cur);
      },
      delete: (ms) => this.changeIndex.remove(msKey(ms)),
    });
    this.caches.managedSecrets.on({
      add: (ms) => this.queue.add(msKey(ms)),
      update: (old, cur) => {
        // Our own status writes change only status: no need to look again. A person's change (spec,
        // force-sync, rotate-now, adopt-from-eso) is looked at now, even while the object backs off from a failure.
        if (
          old.metadata.generation !== cur.metadata.generation ||
          old.metadata.annotations?.[ANNOTATION_FORCE_SYNC] !== cur.metadata.annotations?.[ANNOTATION_FORCE_SYNC] ||
          old.metadata.annotations?.[ANNOTATION_ROTATE_NOW] !== cur.metadata.annotations?.[ANNOTATION_ROTATE_NOW] ||
          old.metadata.annotations?.[ANNOTATION_ADOPT_FROM_ESO] !==
            cur.metadata.annotations?.[ANNOTATION_ADOPT_FROM_ESO] ||
          old.metadata.uid !== cur.metadata.uid ||
          // Deleted while holding the revoke-leases finalizer (issued.ts): revoke now.
          old.metadata.deletionTimestamp !== cur.metadata.deletionTimestamp
        )
          this.queue.add(msKey(cur), { force: true });
      },
      delete: (ms) => this.managedSecrets.forget(msKey(ms), ms),
    });
    const storeEvents = (toKey: (s: AnyStore) => string) => ({
      add: (s: AnyStore) => this.storeChanged(toKey(s), s),
      update: (old: AnyStore, cur: AnyStore) => {
        if (old.metadata.generation !== cur.metadata.generation) this.storeChanged(toKey(cur), cur);
      },
      delete: (s: AnyStore) => this.storeChanged(toKey(s), s, true),
    });
    this.caches.secretStores.on(storeEvents((s) => queueKey.secretStore(s.metadata.namespace ?? '', s.metadata.name)));
    this.caches.clusterStores.on(storeEvents((s) => queueKey.clusterStore(s.metadata.name)));
    // A namespace's labels decide which ClusterSecretStores admit it.
    this.caches.namespaces.on({
      update: (old, cur) => {
        if (JSON.stringify(old.metadata.labels ?? {}) === JSON.stringify(cur.metadata.labels ?? {})) return;
        for (const ms of this.caches.managedSecrets.list())
          if (ms.metadata.namespace === cur.metadata.name && ms.spec.storeRef.kind === 'ClusterSecretStore')
            this.queue.add(msKey(ms));
      },
    });
    // A Secret we wrote changed or went: its ManagedSecret looks for drift.
    const secretTouched = (secret: SecretObject) => {
      const owner = managedSecretOf(secret);
      if (!owner || !secret.metadata.namespace) return;
      // Sharded: a Secret of a shard held elsewhere is that replica's to look at.
      const ms = this.ownership ? this.caches.managedSecrets.get(`${secret.metadata.namespace}/${owner}`) : undefined;
      if (this.ownership && (!ms || !this.mine(ms))) return;
      this.queue.add(queueKey.managedSecret(secret.metadata.namespace, owner));
    };
    this.caches.secrets.on({ update: (_old, cur) => secretTouched(cur), delete: secretTouched });
  }

  private storeChanged(storeKey: string, store: AnyStore, deleted = false): void {
    this.clients.drop(storeKey, deleted ? 'the store was deleted' : 'the store changed', deleted ? store : undefined);
    this.fetchCache.invalidate(storeKey);
    if (deleted) this.queue.cancel(storeKey);
    else this.queue.add(storeKey);
    // A changed store means the values may have changed: its users look again now. Not for the stores of
    // the first list: their users have not been looked at yet, and their first pass decides (status may vouch).
    if (!this.started) return;
    for (const key of this.caches.usersOf(storeKey)) this.managedSecrets.storeChanged(key);
  }

  /** Starts caches, the endpoint and leader election; resolves once the caches have synced. */
  async start(): Promise<void> {
    if (this.options.metricsAddress) {
      this.server = await startObservabilityServer(this.options.metricsAddress, this.metrics, {
        healthy: () => !this.stopRequested || this.workers.length > 0,
        ready: () => this.started,
      });
      this.log.info('serving /healthz, /readyz and /metrics', {
        address: this.options.metricsAddress,
        port: this.server.port,
      });
    }
    // Every replica may create the HMAC key Secret before any leads (create-if-absent): around the fence.
    const bootstrap = this.leader ? new KubeClient(this.options.kubeConfig, { userAgent: 'secretsync' }) : this.client;
    try {
      this.hmacKey = await loadOrCreateHmacKey(bootstrap, this.options.operatorNamespace, this.options.hmacSecretName);
    } finally {
      if (bootstrap !== this.client) bootstrap.close();
    }
    await this.caches.start();
    if (this.ownership) await this.startShards(this.ownership);
    this.started = true;
    this.log.info('caches synced', {
      managedSecrets: this.caches.managedSecrets.size,
      secretStores: this.caches.secretStores.size,
      clusterSecretStores: this.caches.clusterStores.size,
      managedSecretObjects: this.caches.secrets.size,
    });
    let gaugesRunning = false;
    this.gaugeTimer = setInterval(() => {
      // A pass goes in slices (see gauges.ts); on a loaded machine one may outlast the period: never two at once.
      if (gaugesRunning) return;
      gaugesRunning = true;
      updateGauges({
        caches: this.caches,
        metrics: this.metrics,
        checks: () => this.managedSecrets.checks(),
        queueDepth: () => this.queue.depth,
      })
        .catch((err: unknown) => this.log.warn('could not update the gauges', { error: errorMessage(err) }))
        .finally(() => (gaugesRunning = false));
    }, 5_000);
    this.gaugeTimer.unref();
    if (this.ownership) {
      // Active-active: shard work starts now on every replica; the leader, if elected, adds the singletons.
      this.startWorkers();
      if (this.leader)
        void this.leader
          .run(() => this.queueSingletons())
          .then((why) => {
            if (why === 'lost') void this.stop('lost');
          });
    } else if (this.leader) {
      this.metrics.leader.set(0);
      void this.leader
        .run(() => this.startWorkers())
        .then((why) => {
          this.metrics.leader.set(0);
          if (why === 'lost') void this.stop('lost');
        });
    } else {
      this.metrics.leader.set(1);
      this.startWorkers();
    }
  }

  get port(): number | undefined {
    return this.server?.port;
  }

  /** Sharded mode: the shards whose ManagedSecrets and Secrets are cached now (for tests and status). */
  get cachedShards(): number[] {
    return this.caches.cachedShards();
  }

  /** `namespace/name` of what the ManagedSecret and Secret caches hold (for tests: sharded, only the held shards'). */
  cachedKeys(): { managedSecrets: string[]; secrets: string[] } {
    const key = (o: { metadata: { namespace?: string; name: string } }) =>
      `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    return { managedSecrets: this.caches.managedSecrets.list().map(key), secrets: this.caches.secrets.list().map(key) };
  }

  /** The leader's write fence (undefined without leader election): for anything else that writes on the leader. */
  get writeFence(): WriteFence | undefined {
    return this.leader?.fence;
  }

  /**
   * Entries of a store changed (the webhook): the ManagedSecrets that read them
   * sync. Undefined when the operator does not know the store; else how many.
   */
  notifyChanged(storeKey: string, keys: readonly string[], source: string): number | undefined {
    if (!this.caches.store(storeKey)) return undefined;
    this.relayToOthers()?.publish(storeKey, keys);
    return this.changes.changed(storeKey, keys, source);
  }

  /**
   * An IBM Cloud Event Notifications delivery (the webhook): for every IBM
   * store that reads the notification's instance, the ManagedSecrets that read
   * its secrets sync. Events that change no value (expiry warnings, failures,
   * tests) sync nothing. Returns how many ManagedSecrets were sent.
   */
  notifyIbmSecrets(notification: IbmNotification): number {
    if (!VALUE_CHANGING_EVENTS.has(notification.event) || notification.secrets.length === 0) return 0;
    let synced = 0;
    const stores: [string, AnyStore][] = [
      ...this.caches.secretStores
        .list()
        .map((s): [string, AnyStore] => [queueKey.secretStore(s.metadata.namespace ?? '', s.metadata.name), s]),
      ...this.caches.clusterStores.list().map((s): [string, AnyStore] => [queueKey.clusterStore(s.metadata.name), s]),
    ];
    for (const [storeKey, store] of stores) {
      const spec = store.spec.provider.ibmSecretsManager;
      if (!spec || !instanceIdsOfStore(spec).includes(notification.instanceId)) continue;
      const keys = new Set<string>();
      for (const secret of notification.secrets)
        for (const k of keysOfNotifiedSecret(secret, notification.secretType, this.changeIndex.keysOf(storeKey)))
          keys.add(k);
      synced += this.changes.changed(storeKey, [...keys], 'ibm-event-notifications');
      // The other replicas match the secret against their own indexes (keys of a group by name this one does not know).
      this.relayToOthers()?.publish(
        storeKey,
        notification.secrets.flatMap((secret) => ibmRelayForms(secret, notification.secretType)),
      );
    }
    return synced;
  }

  /**
   * The change relay, when another replica may hold a shard. One that holds
   * every shard has no one to tell: a replica that takes a shard over later
   * does not replay older entries either (its first passes decide, see the
   * reconciler's checkFromStatus), and a write per notification would cost the
   * API server and every watching replica for nothing.
   */
  private relayToOthers(): ChangeRelay | undefined {
    if (!this.relay || !this.ownership) return undefined;
    return this.ownership.owned().size < this.ownership.shardCount ? this.relay.relay : undefined;
  }

  isLeader(): boolean {
    return this.leader ? this.leader.isLeader() : this.started;
  }

  /**
   * Sharded mode: caches the held shards now, follows ownership changes from
   * here on, and has every replica label the ManagedSecrets that lack a shard.
   */
  private async startShards(ownership: ShardOwnership): Promise<void> {
    let held = new Set(ownership.owned());
    const follow = () => {
      clearTimeout(this.shardRetry);
      const now = new Set(ownership.owned());
      this.labeller?.shardsGained(new Set([...now].filter((s) => !held.has(s))));
      held = now;
      this.caches.setShards(ownership.owned()).then(
        () => this.metrics.shardsCached.set(this.caches.cachedShards().length),
        (err: unknown) => {
          if (this.stopRequested) return;
          this.log.warn('could not cache the shards held; trying again', { error: errorMessage(err) });
          this.shardRetry = setTimeout(follow, 1_000);
          this.shardRetry.unref();
        },
      );
    };
    this.unsubscribeShards = ownership.onChange(follow);
    await this.caches.setShards(ownership.owned());
    this.metrics.shardsCached.set(this.caches.cachedShards().length);
    await this.labeller?.start();
    await this.startRelay();
    this.log.info('sharded', {
      shardCount: ownership.shardCount,
      held: [...ownership.owned()].sort((a, b) => a - b),
      changeRelay: this.options.changeRelayName ?? CHANGE_RELAY_NAME,
    });
  }

  /**
   * Sharded mode: watches the change relay ConfigMap and publishes to it. Its
   * own client: relay writes are no shard's (a notification may arrive inside
   * a sync's fence scope) and must not count as the data plane's writes.
   */
  private async startRelay(): Promise<void> {
    const hashKey = this.hmacKey;
    if (!hashKey) throw new Error('the HMAC key is not loaded yet');
    const namespace = this.options.operatorNamespace;
    const name = this.options.changeRelayName ?? CHANGE_RELAY_NAME;
    const client = new KubeClient(this.options.kubeConfig, {
      userAgent: 'secretsync',
      requestTimeoutMs: this.options.kubeRequestTimeoutMs,
      connectTimeoutMs: this.options.kubeConnectTimeoutMs,
      watchIdleTimeoutMs: this.options.watchIdleTimeoutMs,
    });
    const relay = new ChangeRelay({
      client: configMapRelayClient(client, namespace, name),
      identity: this.options.identity,
      hashKey,
      log: this.log,
      onEvent: (what) => this.metrics.changeRelayEntries.inc({ what }),
      target: {
        changed: (storeKey, keys, unmatched) => {
          if (!this.caches.store(storeKey)) return;
          if (keys.length > 0) this.changes.changed(storeKey, keys, 'relay');
          // A hash no exact key here matched may be an entry a find lists: those ManagedSecrets read again.
          const finders = unmatched ? [...this.changeIndex.findUsersOf(storeKey)] : [];
          if (finders.length === 0) return;
          this.fetchCache.invalidate(storeKey);
          for (const key of finders) this.managedSecrets.storeChanged(key);
        },
        changedAll: (storeKey) => {
          if (this.caches.store(storeKey)) this.changes.changedAll(storeKey, 'relay');
        },
        missed: () => {
          for (const s of this.caches.secretStores.list())
            this.changes.changedAll(queueKey.secretStore(s.metadata.namespace ?? '', s.metadata.name), 'relay');
          for (const s of this.caches.clusterStores.list())
            this.changes.changedAll(queueKey.clusterStore(s.metadata.name), 'relay');
        },
        keysOf: (storeKey) => this.changeIndex.keysOf(storeKey),
        aliasesOf: (storeKey, key) =>
          this.caches.store(storeKey)?.spec.provider.ibmSecretsManager ? ibmAliasesOfKey(key) : [],
      },
    });
    const informer = new Informer<KubeObject>(client, {
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      fieldSelector: `metadata.name=${name}`,
      onError: (err) => this.log.warn('change relay watch failed; retrying', { error: errorMessage(err) }),
    });
    informer.on({
      add: (obj) => relay.observe(relayObjectOf(obj)),
      update: (_old, obj) => relay.observe(relayObjectOf(obj)),
      delete: () => relay.observe(undefined),
    });
    // What the relay held before this replica watched it is the past: its first passes read anyway.
    const watch = async (): Promise<boolean> => {
      try {
        await informer.start();
        relay.start();
        return true;
      } catch (err) {
        if (!this.stopRequested)
          this.log.warn('could not watch the change relay; trying again (notifications for other replicas wait)', {
            configMap: name,
            error: errorMessage(err),
          });
        return false;
      }
    };
    // A relay the operator may not read (RBAC of an older chart) costs the other shards their events, not the start.
    const started = await watch();
    const retry = async () => {
      for (let delay = 1_000; !this.stopRequested; delay = Math.min(delay * 2, 30_000)) {
        await abortableSleep(delay, this.stopping.signal).catch(() => undefined);
        if (this.stopRequested || (await watch())) return;
      }
    };
    this.relay = { relay, informer, client, watching: started ? Promise.resolve() : retry() };
  }

  /** The cluster-wide singletons (store checks) that run on the leader only; sharded mode. */
  private isSingletonRunner(): boolean {
    return this.leader ? this.leader.isLeader() : true;
  }

  private queueSingletons(): void {
    if (this.stopRequested) return;
    this.metrics.leader.set(1);
    for (const s of this.caches.secretStores.list())
      this.queue.add(queueKey.secretStore(s.metadata.namespace ?? '', s.metadata.name));
    for (const s of this.caches.clusterStores.list()) this.queue.add(queueKey.clusterStore(s.metadata.name));
  }

  private startWorkers(): void {
    if (this.stopRequested) return;
    if (!this.ownership || this.isSingletonRunner()) this.queueSingletons();
    for (const ms of this.caches.managedSecrets.list())
      this.queue.add(queueKey.managedSecret(ms.metadata.namespace ?? '', ms.metadata.name));
    for (let i = 0; i < this.options.concurrency; i++) this.workers.push(this.worker());
    this.log.info('reconciling', { workers: this.options.concurrency });
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.metrics.queueDepth.set(this.queue.depth);
      try {
        const parsed = parseQueueKey(key);
        if (!this.ownership) {
          if (parsed.kind === 'ms') await this.managedSecrets.reconcile(key);
          else await this.stores.reconcile(key);
        } else if (parsed.kind === 'ms') {
          const ms = this.caches.managedSecrets.get(parsed.cacheKey);
          // Gone: the reconciler forgets it. Not ours (a shard lost since it was queued): dropped here.
          if (!ms) await this.managedSecrets.reconcile(key);
          else if (!this.mine(ms)) this.queue.cancel(key);
          else await this.client.withFence(this.shardFenceOf(ms), () => this.managedSecrets.reconcile(key));
        } else if (this.isSingletonRunner()) {
          await this.client.withFence(this.leader?.fence, () => this.stores.reconcile(key));
        } else {
          // The leader checks stores; this replica learns of their state from their status.
          this.queue.cancel(key);
        }
      } catch (err) {
        if (err instanceof NotShardOwnerError) {
          // The shard went while its sync ran (its status could not be written either): the new owner syncs it.
          this.log.debug('shard lost during a sync; left to its new owner', { key });
          this.queue.cancel(key);
          continue;
        }
        // Reconcilers turn every failure into status; this is a bug guard, never a crash.
        this.log.error('reconcile failed unexpectedly', { key, error: errorMessage(err) });
        this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  /** Drains: stops taking work, lets in-flight syncs finish, releases the Lease. */
  async stop(why: 'lost' | 'stopped' = 'stopped'): Promise<void> {
    if (this.stopRequested) return;
    this.stopRequested = true;
    this.log.info('shutting down', { inFlight: this.queue.inFlight });
    this.leader?.stop();
    this.unsubscribeShards?.();
    clearTimeout(this.shardRetry);
    this.queue.shutDown();
    // A lost Lease aborts in-flight work at once; a normal stop lets it finish.
    if (why === 'lost') this.stopping.abort();
    await Promise.all(this.workers);
    this.stopping.abort();
    await this.restarter.stop();
    await this.leader?.release();
    if (this.gaugeTimer) clearInterval(this.gaugeTimer);
    await this.labeller?.stop();
    if (this.relay) {
      await this.relay.relay.stop();
      // Stopped first: a first list still in flight is aborted, and the retries see the stop.
      await this.relay.informer.stop();
      await this.relay.watching;
      this.relay.client.close();
    }
    await this.caches.stop();
    await this.clients.closeAll();
    this.changes.stopAll();
    await this.server?.close();
    this.client.close();
    this.log.info('stopped');
    this.resolveDone(why);
  }
}
