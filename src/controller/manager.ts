import {
  ANNOTATION_FORCE_SYNC,
  ANNOTATION_ROTATE_NOW,
  API_VERSION,
  Reasons,
  type AnyStore,
  type ClusterSecretStore,
  type Condition,
  type ManagedSecret,
  type ManagedSecretStatus,
  type RotationSpec,
  type SecretStore,
  type StoreStatus,
} from '../api/types.js';
import type { KubeAuth } from '../kube/config.js';
import { KubeClient, isAlreadyExists, isConflict, isNotFound, type KubeObject } from '../kube/client.js';
import { collectionPaths, InformerGroup } from '../kube/informer-group.js';
import { objectKey } from '../kube/informer.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { startObservabilityServer } from '../observability/server.js';
import {
  DecryptError,
  KeyNotFoundError,
  ProviderConfigError,
  type ProviderClient,
  type ProviderContext,
  type ServedRegion,
} from '../providers/provider.js';
import { isCiphertext } from '../crypto/ciphertext.js';
import { storeBudgets, storeLabel } from '../providers/aws/budget.js';
import { regionHealth } from '../providers/aws/failover.js';
import { providerFor } from '../providers/registry.js';
import {
  buildDesired,
  LABEL_MANAGED,
  managedKeysOf,
  managedSecretOf,
  planSecretWrite,
  targetName,
  type SecretObject,
} from '../secrets/desired.js';
import { dataHmac, loadOrCreateHmacKey } from '../secrets/hmac.js';
import { renderTemplates, TemplateError } from '../secrets/template.js';
import { getCondition, setCondition } from './conditions.js';
import { describePlace, failoverStatus, hasFailoverCondition } from './failover-status.js';
import { EventRecorder, type EventTarget } from './events.js';
import { FetchCache } from './fetch-cache.js';
import { clusterAccess } from './provider-context.js';
import { LeaderElector } from './leader.js';
import { namespaceAllowed } from './selectors.js';
import { fetchTtl, nextRefreshDelay, parseDuration, refreshPhase } from './schedule.js';
import { WorkQueue } from './workqueue.js';
import { DEFAULT_MAX_CONCURRENT_RESTARTS, RolloutRestarter } from './rollout.js';
import { rotationDecision, rotationDueInMs, Rotator, validateRotation, type ActiveRotation } from './rotation.js';

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
  /** Deadline of one Kubernetes API request, retries included (not watches; default 30 s). */
  kubeRequestTimeoutMs?: number;
  /** Deadline of each connection to the API server, TLS included (default 5 s). */
  kubeConnectTimeoutMs?: number;
  /** A watch that brings no event and no bookmark for this long is restarted (default 90 s). */
  watchIdleTimeoutMs?: number;
}

type NamespaceObject = KubeObject;

interface SyncState {
  lastCheck?: number;
  forceSeen?: string;
  lastFailed?: boolean;
  intervalMs?: number;
  /** A create met AlreadyExists: ask the server for the target, the cache does not know it. */
  probeTarget?: boolean;
}

/**
 * Our own kinds as the caches keep them (the informer already drops
 * managedFields): without kubectl's last-applied copy of the spec, as big as the
 * object itself and never read by the operator (it writes only status, by patch).
 */
function slim<T extends KubeObject>(obj: KubeObject): T {
  const annotations = obj.metadata.annotations;
  if (annotations?.[LAST_APPLIED] !== undefined) delete annotations[LAST_APPLIED];
  return obj as T;
}
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

const refreshPhaseOf = (ms: ManagedSecret): number =>
  refreshPhase(ms.metadata.uid ?? `${ms.metadata.namespace}/${ms.metadata.name}`);

const GROUP_PREFIX = `/apis/${API_VERSION}`;
const keyOf = {
  ms: (ns: string, name: string) => `ms/${ns}/${name}`,
  ss: (ns: string, name: string) => `ss/${ns}/${name}`,
  css: (name: string) => `css/${name}`,
};

/** Wraps a provider client so that every real backend call is counted and timed (cache hits are not). */
function meteredClient(
  client: ProviderClient,
  observe: <T>(operation: string, call: () => Promise<T>) => Promise<T>,
): ProviderClient {
  const metered: ProviderClient = {
    getValue: (ref) => observe('getValue', () => client.getValue(ref)),
    getProperties: (key, version) => observe('getProperties', () => client.getProperties(key, version)),
    find: (query) => observe('find', () => client.find(query)),
    check: () => client.check(),
    close: () => client.close(),
  };
  const servedRegion = client.servedRegion?.bind(client);
  if (servedRegion) metered.servedRegion = servedRegion;
  const getValues = client.getValues?.bind(client);
  if (getValues) metered.getValues = (refs) => observe('getValues', () => getValues(refs));
  const decrypt = client.decrypt?.bind(client);
  if (decrypt) metered.decrypt = decrypt;
  const putValue = client.putValue?.bind(client);
  if (putValue) metered.putValue = (ref, value, opts) => observe('putValue', () => putValue(ref, value, opts));
  return metered;
}

/** Secret keys may hold only these characters; entry names found by `find` are mapped onto them. */
const toSecretKey = (name: string) => name.replace(/[^-._a-zA-Z0-9]/g, '_');

/** One value from an entry's properties: the sole property as is, several as their JSON. */
const entryValue = (props: Record<string, string>): string => {
  const keys = Object.keys(props);
  return keys.length === 1 ? (props[keys[0] as string] as string) : JSON.stringify(props);
};

/**
 * The operator: informers on our resources, Namespaces and our own Secrets,
 * a work queue, the ManagedSecret and store reconcilers, leader election and
 * the health/metrics endpoint.
 */
export class Manager {
  readonly client: KubeClient;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly queue = new WorkQueue();
  private readonly managedSecrets: InformerGroup<ManagedSecret & KubeObject>;
  private readonly secretStores: InformerGroup<SecretStore & KubeObject>;
  private readonly clusterStores: InformerGroup<ClusterSecretStore & KubeObject>;
  private readonly namespaceInformer: InformerGroup<NamespaceObject>;
  private readonly secrets: InformerGroup<SecretObject>;
  private readonly events: EventRecorder;
  private readonly state = new Map<string, SyncState>();
  private readonly fetchCache: FetchCache;
  private readonly clients = new Map<
    string,
    { client: ProviderClient; generation: number; at: number; provider: string }
  >();
  private readonly connecting = new Map<
    string,
    { generation: number; promise: Promise<{ client: ProviderClient; provider: string }> }
  >();
  private readonly rotator: Rotator;
  private readonly restarter: RolloutRestarter;
  private leader: LeaderElector | undefined;
  private hmacKey: Buffer | undefined;
  private workers: Promise<void>[] = [];
  private server: { close(): Promise<void>; port: number } | undefined;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopping = false;
  /** Resolves when the manager stops: 'lost' if the leader Lease was lost, else 'stopped'. */
  readonly done: Promise<'lost' | 'stopped'>;
  private resolveDone!: (why: 'lost' | 'stopped') => void;

  constructor(private readonly options: ManagerOptions) {
    this.log = options.logger;
    this.metrics = options.metrics;
    this.client = new KubeClient(options.kubeConfig, {
      qps: options.qps,
      burst: options.burst,
      userAgent: 'secretsync',
      requestTimeoutMs: options.kubeRequestTimeoutMs,
      connectTimeoutMs: options.kubeConnectTimeoutMs,
      // The informers' watches take their idle timeout from the client.
      watchIdleTimeoutMs: options.watchIdleTimeoutMs,
    });
    const onError = (what: string) => (err: unknown) =>
      this.log.warn('watch failed; retrying', { resource: what, error: errorMessage(err) });
    const ns = options.namespaces;
    this.managedSecrets = new InformerGroup(this.client, collectionPaths(GROUP_PREFIX, 'managedsecrets', ns), {
      onError: onError('managedsecrets'),
      transform: slim<ManagedSecret & KubeObject>,
    });
    this.secretStores = new InformerGroup(this.client, collectionPaths(GROUP_PREFIX, 'secretstores', ns), {
      onError: onError('secretstores'),
      transform: slim<SecretStore & KubeObject>,
    });
    this.clusterStores = new InformerGroup(this.client, [`${GROUP_PREFIX}/clustersecretstores`], {
      onError: onError('clustersecretstores'),
      transform: slim<ClusterSecretStore & KubeObject>,
    });
    this.namespaceInformer = new InformerGroup<NamespaceObject>(this.client, ['/api/v1/namespaces'], {
      onError: onError('namespaces'),
      transform: (o) => ({
        metadata: { name: o.metadata.name, labels: o.metadata.labels, resourceVersion: o.metadata.resourceVersion },
      }),
    });
    // Only Secrets that carry our label: memory follows what we manage, not the cluster's size.
    this.secrets = new InformerGroup<SecretObject>(this.client, collectionPaths('/api/v1', 'secrets', ns), {
      labelSelector: `${LABEL_MANAGED}=true`,
      onError: onError('secrets'),
    });
    this.events = new EventRecorder(this.client, this.log, {
      onDropped: (type) => this.metrics.eventsDropped.inc({ type }),
    });
    // One budget per store lives with the AWS providers; Prometheus reads it at scrape time.
    this.metrics.budgetSource = () => storeBudgets.all().map((b) => b.stats());
    // Regional failover (AWS `failover`): breakers live with the providers; moves are counted here.
    this.metrics.circuitSource = () => regionHealth.stats();
    regionHealth.onFailover = (e) =>
      this.metrics.failovers.inc({ provider: e.provider, store: e.store, from_region: e.from, to_region: e.to });
    this.fetchCache = new FetchCache({ onResult: (result) => this.metrics.fetchCache.inc({ result }) });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    const patchMsStatus = (ms: ManagedSecret, status: Record<string, unknown>) => this.patchRotationStatus(ms, status);
    const eventTarget = (ms: ManagedSecret) => this.eventTarget(ms);
    this.rotator = new Rotator({
      log: this.log,
      metrics: this.metrics,
      events: this.events,
      eventTarget,
      patchStatus: patchMsStatus,
    });
    this.restarter = new RolloutRestarter({
      client: this.client,
      log: this.log,
      metrics: this.metrics,
      events: this.events,
      eventTarget,
      patchStatus: patchMsStatus,
      maxConcurrent: options.maxConcurrentRestarts ?? DEFAULT_MAX_CONCURRENT_RESTARTS,
    });
    this.wireHandlers();
  }

  private wireHandlers(): void {
    const enqueueMs = (ms: ManagedSecret) => this.queue.add(keyOf.ms(ms.metadata.namespace ?? '', ms.metadata.name));
    this.managedSecrets.on({
      add: enqueueMs,
      update: (old, cur) => {
        // Our own status writes change only status: no need to look again.
        if (
          old.metadata.generation !== cur.metadata.generation ||
          old.metadata.annotations?.[ANNOTATION_FORCE_SYNC] !== cur.metadata.annotations?.[ANNOTATION_FORCE_SYNC] ||
          old.metadata.annotations?.[ANNOTATION_ROTATE_NOW] !== cur.metadata.annotations?.[ANNOTATION_ROTATE_NOW] ||
          old.metadata.uid !== cur.metadata.uid
        )
          enqueueMs(cur);
      },
      delete: (ms) => {
        const key = keyOf.ms(ms.metadata.namespace ?? '', ms.metadata.name);
        this.queue.cancel(key);
        this.state.delete(key);
      },
    });
    const storeChanged = (kind: 'SecretStore' | 'ClusterSecretStore') => ({
      add: (s: AnyStore) => this.onStoreChange(kind, s),
      update: (old: AnyStore, cur: AnyStore) => {
        if (old.metadata.generation !== cur.metadata.generation) this.onStoreChange(kind, cur);
      },
      delete: (s: AnyStore) => this.onStoreChange(kind, s, true),
    });
    this.secretStores.on(storeChanged('SecretStore'));
    this.clusterStores.on(storeChanged('ClusterSecretStore'));
    this.namespaceInformer.on({
      update: (old, cur) => {
        if (JSON.stringify(old.metadata.labels ?? {}) === JSON.stringify(cur.metadata.labels ?? {})) return;
        for (const ms of this.managedSecrets.list())
          if (ms.metadata.namespace === cur.metadata.name && ms.spec.storeRef.kind === 'ClusterSecretStore')
            enqueueMs(ms);
      },
    });
    const secretTouched = (secret: SecretObject) => {
      const owner = managedSecretOf(secret);
      if (owner && secret.metadata.namespace) this.queue.add(keyOf.ms(secret.metadata.namespace, owner));
    };
    this.secrets.on({ update: (_old, cur) => secretTouched(cur), delete: secretTouched });
  }

  private onStoreChange(kind: 'SecretStore' | 'ClusterSecretStore', store: AnyStore, deleted = false): void {
    const ns = store.metadata.namespace ?? '';
    const storeKey = kind === 'SecretStore' ? keyOf.ss(ns, store.metadata.name) : keyOf.css(store.metadata.name);
    this.dropClient(storeKey);
    this.fetchCache.invalidate(storeKey);
    if (deleted) {
      this.queue.cancel(storeKey);
      storeBudgets.forget(store);
      regionHealth.forget(storeLabel(store));
    } else this.queue.add(storeKey);
    for (const ms of this.managedSecrets.list()) {
      const ref = ms.spec.storeRef;
      if ((ref.kind ?? 'SecretStore') !== kind || ref.name !== store.metadata.name) continue;
      if (kind === 'SecretStore' && ms.metadata.namespace !== ns) continue;
      const key = keyOf.ms(ms.metadata.namespace ?? '', ms.metadata.name);
      // A changed store means the values may have changed: look again now.
      const st = this.state.get(key);
      if (st) st.lastCheck = undefined;
      this.queue.add(key);
    }
  }

  /** Starts caches, the endpoint and leader election; resolves once the caches have synced. */
  async start(): Promise<void> {
    if (this.options.metricsAddress) {
      this.server = await startObservabilityServer(this.options.metricsAddress, this.metrics, {
        healthy: () => !this.stopping || this.workers.length > 0,
        ready: () => this.started,
      });
      this.log.info('serving /healthz, /readyz and /metrics', {
        address: this.options.metricsAddress,
        port: this.server.port,
      });
    }
    this.hmacKey = await loadOrCreateHmacKey(this.client, this.options.operatorNamespace, this.options.hmacSecretName);
    await Promise.all([
      this.managedSecrets.start(),
      this.secretStores.start(),
      this.clusterStores.start(),
      this.namespaceInformer.start(),
      this.secrets.start(),
    ]);
    this.started = true;
    this.log.info('caches synced', {
      managedSecrets: this.managedSecrets.size,
      secretStores: this.secretStores.size,
      clusterSecretStores: this.clusterStores.size,
      managedSecretObjects: this.secrets.size,
    });
    this.gaugeTimer = setInterval(() => this.updateGauges(), 5_000);
    this.gaugeTimer.unref();
    if (this.options.leaderElection) {
      this.leader = new LeaderElector(
        this.client,
        { namespace: this.options.operatorNamespace, name: this.options.leaseName, identity: this.options.identity },
        this.log,
      );
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

  isLeader(): boolean {
    return this.leader ? this.leader.isLeader() : this.started;
  }

  private startWorkers(): void {
    if (this.stopping) return;
    this.metrics.leader.set(1);
    for (const s of this.secretStores.list()) this.queue.add(keyOf.ss(s.metadata.namespace ?? '', s.metadata.name));
    for (const s of this.clusterStores.list()) this.queue.add(keyOf.css(s.metadata.name));
    for (const ms of this.managedSecrets.list())
      this.queue.add(keyOf.ms(ms.metadata.namespace ?? '', ms.metadata.name));
    for (let i = 0; i < this.options.concurrency; i++) this.workers.push(this.worker());
    this.log.info('reconciling', { workers: this.options.concurrency });
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.metrics.queueDepth.set(this.queue.depth);
      try {
        if (key.startsWith('ms/')) await this.reconcileManagedSecret(key);
        else await this.reconcileStore(key);
      } catch (err) {
        // Reconcilers handle their own errors; this is a bug guard, never a crash.
        this.log.error('reconcile failed unexpectedly', { key, error: errorMessage(err) });
        this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  /** Drains: stops taking work, lets in-flight syncs finish, releases the Lease. */
  async stop(why: 'lost' | 'stopped' = 'stopped'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info('shutting down', { inFlight: this.queue.inFlight });
    this.leader?.stop();
    this.queue.shutDown();
    await Promise.all(this.workers);
    await this.restarter.stop();
    await this.leader?.release();
    if (this.gaugeTimer) clearInterval(this.gaugeTimer);
    await Promise.all([
      this.managedSecrets.stop(),
      this.secretStores.stop(),
      this.clusterStores.stop(),
      this.namespaceInformer.stop(),
      this.secrets.stop(),
    ]);
    await Promise.all([...this.clients.values()].map((c) => c.client.close().catch(() => undefined)));
    await this.server?.close();
    this.client.close();
    this.log.info('stopped');
    this.resolveDone(why);
  }

  // ---------------------------------------------------------------- stores

  private resolveStore(ms: ManagedSecret): { store: AnyStore; storeKey: string } | { reason: string; message: string } {
    const kind = ms.spec.storeRef.kind ?? 'SecretStore';
    const name = ms.spec.storeRef.name;
    const ns = ms.metadata.namespace ?? '';
    if (kind === 'SecretStore') {
      const store = this.secretStores.get(`${ns}/${name}`);
      if (!store) return { reason: Reasons.StoreNotFound, message: `SecretStore ${ns}/${name} not found` };
      return { store, storeKey: keyOf.ss(ns, name) };
    }
    const store = this.clusterStores.get(name);
    if (!store) return { reason: Reasons.StoreNotFound, message: `ClusterSecretStore ${name} not found` };
    const labels = this.namespaceInformer.get(ns)?.metadata.labels ?? {};
    if (!namespaceAllowed(store.spec.conditions, ns, labels)) {
      return { reason: Reasons.StoreNotAllowed, message: `ClusterSecretStore ${name} does not allow namespace ${ns}` };
    }
    return { store, storeKey: keyOf.css(name) };
  }

  private providerContext(store: AnyStore, provider: string): ProviderContext {
    return {
      ...clusterAccess(this.client),
      storeNamespace: store.kind === 'SecretStore' ? store.metadata.namespace : undefined,
      allowOperatorIdentityForNamespacedStores: this.options.allowOperatorIdentityForNamespacedStores === true,
      observe: (operation, call) => this.metrics.observeProvider(provider, operation, call),
    };
  }

  private async providerClient(
    storeKey: string,
    store: AnyStore,
  ): Promise<{ client: ProviderClient; provider: string }> {
    const cached = this.clients.get(storeKey);
    const ttl = this.options.providerClientTtlMs ?? 5 * 60_000;
    if (cached && cached.generation === store.metadata.generation && Date.now() - cached.at < ttl) return cached;
    // Workers that find no client at the same moment share one connect (one client, one KMS data-key cache).
    const generation = store.metadata.generation ?? 0;
    const pending = this.connecting.get(storeKey);
    if (pending && pending.generation === generation) return pending.promise;
    const promise = this.connectClient(storeKey, store);
    this.connecting.set(storeKey, { generation, promise });
    const forget = () => {
      if (this.connecting.get(storeKey)?.promise === promise) this.connecting.delete(storeKey);
    };
    promise.then(forget, forget);
    return promise;
  }

  private async connectClient(
    storeKey: string,
    store: AnyStore,
  ): Promise<{ client: ProviderClient; provider: string }> {
    if (this.clients.has(storeKey)) this.dropClient(storeKey);
    const provider = providerFor(store.spec.provider);
    const client = await this.metrics.observeProvider(provider.name, 'connect', () =>
      provider.connect(store, this.providerContext(store, provider.name)),
    );
    const entry = {
      client: meteredClient(client, (operation, call) => this.metrics.observeProvider(provider.name, operation, call)),
      generation: store.metadata.generation ?? 0,
      at: Date.now(),
      provider: provider.name,
    };
    this.clients.set(storeKey, entry);
    return entry;
  }

  private dropClient(storeKey: string): void {
    const cached = this.clients.get(storeKey);
    if (!cached) return;
    this.clients.delete(storeKey);
    cached.client.close().catch(() => undefined);
  }

  private async reconcileStore(key: string): Promise<void> {
    const [kind, ...rest] = key.split('/');
    const cacheKey = rest.join('/');
    const store = kind === 'ss' ? this.secretStores.get(cacheKey) : this.clusterStores.get(cacheKey);
    if (!store) {
      this.dropClient(key);
      return;
    }
    const target = this.eventTarget(store);
    let ready: Omit<Condition, 'lastTransitionTime'>;
    let served: ServedRegion | undefined;
    try {
      const { client, provider } = await this.providerClient(key, store);
      await this.metrics.observeProvider(provider, 'check', () => client.check());
      served = client.servedRegion?.();
      ready = {
        type: 'Ready',
        status: 'True',
        reason: Reasons.Valid,
        message: `store is reachable and its credentials are valid${served && !served.primary ? ` (served by failover ${served.endpoint !== undefined ? 'endpoint' : 'region'} ${describePlace(served.region, served.endpoint)})` : ''}`,
      };
    } catch (err) {
      this.dropClient(key);
      const reason = err instanceof ProviderConfigError ? Reasons.InvalidProviderConfig : Reasons.StoreNotReady;
      ready = { type: 'Ready', status: 'False', reason, message: errorMessage(err) };
      this.events.emit(target, 'Warning', reason, ready.message);
      this.log.warn('store not ready', { store: `${store.kind}/${cacheKey}`, reason, message: ready.message });
    }
    ready.observedGeneration = store.metadata.generation;
    let { conditions, changed } = setCondition(store.status?.conditions, ready);
    // With failover: the Failover condition, activeRegion (+ activeEndpoint) and an Event on a move. Without
    // (any more), on a healthy store: they go (null removes a field in the merge patch).
    let activeRegion: string | null | undefined = store.status?.activeRegion;
    let activeEndpoint: string | null | undefined = store.status?.activeEndpoint;
    if (served) {
      const failover = failoverStatus(store, served);
      const set = setCondition(conditions, failover.condition);
      conditions = set.conditions;
      changed = changed || set.changed || failover.changed;
      activeRegion = served.region;
      activeEndpoint = served.endpoint ?? (activeEndpoint !== undefined ? null : undefined);
      const move = failover.move;
      if (move) {
        this.events.emit(target, move.type, move.reason, move.message);
        this.log.info('store region changed', { store: storeLabel(store), from: move.from, to: move.to });
      }
    } else if (
      ready.status === 'True' &&
      (activeRegion !== undefined || activeEndpoint !== undefined || hasFailoverCondition(conditions))
    ) {
      conditions = conditions.filter((c) => c.type !== 'Failover');
      changed = true;
      activeRegion = activeRegion !== undefined ? null : undefined;
      activeEndpoint = activeEndpoint !== undefined ? null : undefined;
    }
    if (changed || store.status?.observedGeneration !== store.metadata.generation) {
      const status: Omit<StoreStatus, 'activeRegion' | 'activeEndpoint'> & {
        activeRegion?: string | null;
        activeEndpoint?: string | null;
      } = {
        conditions,
        observedGeneration: store.metadata.generation,
        // null: a merge patch removes the field.
        ...(activeRegion !== undefined ? { activeRegion } : {}),
        ...(activeEndpoint !== undefined ? { activeEndpoint } : {}),
      };
      await this.patchStatus(store, status).catch((err: unknown) => {
        if (!isNotFound(err))
          this.log.warn('could not write store status', {
            store: `${store.kind}/${cacheKey}`,
            error: errorMessage(err),
          });
      });
    }
    this.queue.addAfter(key, this.options.storeCheckIntervalMs ?? 5 * 60_000);
  }

  // ---------------------------------------------------------- ManagedSecrets

  private eventTarget(obj: AnyStore | ManagedSecret): EventTarget {
    return {
      apiVersion: API_VERSION,
      kind: obj.kind,
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
    };
  }

  private async readTarget(ms: ManagedSecret, state: SyncState): Promise<SecretObject | undefined> {
    const ns = ms.metadata.namespace ?? '';
    const name = targetName(ms);
    const cached = this.secrets.get(`${ns}/${name}`);
    // After a 409 the cache is behind the server (or does not know the Secret): ask the server.
    if (!state.probeTarget) {
      if (cached) return cached;
      // Every Secret an Owner ManagedSecret wrote carries our label, so the
      // label-filtered cache holds it: a miss means there is none to read, and
      // the create finds out (AlreadyExists) when someone else's is in the way.
      // This saves a GET per ManagedSecret on a cold start.
      if ((ms.spec.target?.creationPolicy ?? 'Owner') === 'Owner') return undefined;
    }
    // Not labelled by us (yet): a Secret we are to merge into, or someone else's.
    try {
      const found = await this.client.get<SecretObject>(`/api/v1/namespaces/${ns}/secrets/${name}`);
      state.probeTarget = false;
      return found;
    } catch (err) {
      if (isNotFound(err)) {
        state.probeTarget = false;
        return undefined;
      }
      throw err;
    }
  }

  /** The HMAC of what the Secret holds now, over the keys we manage. */
  private actualHmac(ms: ManagedSecret, secret: SecretObject | undefined): string | undefined {
    if (!secret || !this.hmacKey) return undefined;
    const type = ms.spec.target?.type ?? 'Opaque';
    if ((ms.spec.target?.creationPolicy ?? 'Owner') !== 'Merge')
      return dataHmac(this.hmacKey, secret.type ?? 'Opaque', secret.data ?? {});
    const ours: Record<string, string> = {};
    for (const k of managedKeysOf(secret)) if (secret.data?.[k] !== undefined) ours[k] = secret.data[k] as string;
    return dataHmac(this.hmacKey, type, ours);
  }

  private async reconcileManagedSecret(key: string): Promise<void> {
    const cacheKey = key.slice(3);
    const ms = this.managedSecrets.get(cacheKey);
    if (!ms || ms.metadata.deletionTimestamp) {
      this.state.delete(key);
      return;
    }
    const state = this.state.get(key) ?? {};
    this.state.set(key, state);
    const now = Date.now();
    const policy = ms.spec.target?.creationPolicy ?? 'Owner';

    let intervalMs: number;
    try {
      intervalMs = parseDuration(ms.spec.refreshInterval ?? '1h');
      if (ms.spec.refreshSchedule) nextRefreshDelay(ms.spec, now);
      for (const item of ms.spec.dataFrom ?? []) {
        const pattern = item.find?.nameRegexp;
        if (pattern === undefined) continue;
        try {
          new RegExp(pattern);
        } catch {
          throw new Error(`dataFrom.find.nameRegexp "${pattern}" is not a valid regular expression`);
        }
      }
    } catch (err) {
      await this.fail(ms, key, state, Reasons.InvalidSpec, errorMessage(err), false);
      return;
    }
    state.intervalMs = intervalMs;

    const existing = await this.readTarget(ms, state);
    const forceValue = ms.metadata.annotations?.[ANNOTATION_FORCE_SYNC];
    const forced = forceValue !== undefined && forceValue !== state.forceSeen;
    const generationChanged = ms.status?.observedGeneration !== ms.metadata.generation;
    const drifted = policy !== 'None' && this.actualHmac(ms, existing) !== ms.status?.syncedVersion;
    const delay =
      state.lastCheck === undefined ? 0 : nextRefreshDelay(ms.spec, state.lastCheck, now, refreshPhaseOf(ms));
    const due = state.lastCheck === undefined || (delay !== undefined && delay <= 0);
    const readyOk = getCondition(ms.status?.conditions, 'Ready')?.status === 'True';
    // refreshInterval 0: synced once and still in place means nothing to do, even after a restart.
    const syncedOnce =
      delay === undefined &&
      readyOk &&
      !generationChanged &&
      !drifted &&
      state.lastCheck === undefined &&
      !!ms.status?.syncedVersion;
    const rotation = ms.spec.rotation ? await this.rotateIfDue(ms, key, now) : undefined;
    if (!rotation && !forced && !generationChanged && !drifted && !state.lastFailed && (!due || syncedOnce)) {
      this.scheduleRefresh(key, ms, state);
      return;
    }

    const end = this.metrics.syncDuration.startTimer();
    try {
      // A force-sync or a rotation asks for fresh values; otherwise reads shared within the cycle are fine.
      await this.sync(ms, key, state, existing, now, forced || rotation ? 0 : fetchTtl(intervalMs));
      if (forceValue !== undefined) state.forceSeen = forceValue;
      if (rotation) await this.finishRotation(ms, key, state, rotation, now);
    } finally {
      end();
    }
  }

  private scheduleRefresh(key: string, ms: ManagedSecret, state: SyncState): void {
    const delay = nextRefreshDelay(ms.spec, state.lastCheck ?? Date.now(), Date.now(), refreshPhaseOf(ms));
    if (delay !== undefined) this.queue.addAfter(key, Math.max(delay, 1_000));
    this.scheduleRotation(key, ms);
  }

  private async fetchValues(
    ms: ManagedSecret,
    client: ProviderClient,
    storeKey: string,
    ttlMs: number,
    existing: SecretObject | undefined,
  ): Promise<{ values: Record<string, string>; missing: string[] }> {
    const values: Record<string, string> = {};
    const missing: string[] = [];
    const decrypt = client.decrypt?.bind(client);
    // Fetched concurrently, so that reads of one backend can be batched and shared.
    await Promise.all(
      (ms.spec.data ?? []).map(async (item) => {
        const binding = {
          namespace: ms.metadata.namespace ?? '',
          managedSecret: ms.metadata.name,
          secretKey: item.secretKey,
        };
        if (item.ciphertext !== undefined) {
          if (!decrypt)
            throw new DecryptError(
              `data "${item.secretKey}" carries a ciphertext, but the store has no KMS to decrypt it`,
            );
          values[item.secretKey] = await decrypt(item.ciphertext, binding);
          return;
        }
        const ref = item.remoteRef;
        if (!ref) return;
        try {
          values[item.secretKey] = await this.fetchCache.getValue(storeKey, client, ref, ttlMs);
        } catch (err) {
          if (!(err instanceof KeyNotFoundError)) throw err;
          missing.push(ref.property ? `${ref.key}[${ref.property}]` : ref.key);
        }
      }),
    );
    for (const item of ms.spec.dataFrom ?? []) {
      if (item.extract) {
        const extract = item.extract;
        try {
          Object.assign(
            values,
            await this.fetchCache.getProperties(storeKey, client, extract.key, extract.version, ttlMs),
          );
        } catch (err) {
          if (!(err instanceof KeyNotFoundError)) throw err;
          missing.push(extract.key);
        }
      } else if (item.find) {
        const query = item.find;
        const found = await this.fetchCache.find(storeKey, client, query, ttlMs);
        for (const [name, props] of found) {
          const relative = query.prefix && name.startsWith(query.prefix) ? name.slice(query.prefix.length) : name;
          values[toSecretKey(relative.replace(/^\/+/, ''))] = entryValue(props);
        }
      }
    }
    // Client-side decryption: the backend holds only secretsync ciphertexts, bound to the Secret key they land in.
    const fetchedKeys = new Set((ms.spec.data ?? []).filter((d) => d.ciphertext === undefined).map((d) => d.secretKey));
    if (decrypt) {
      await Promise.all(
        Object.entries(values).map(async ([secretKey, value]) => {
          if (!isCiphertext(value)) return;
          if ((ms.spec.data ?? []).some((d) => d.secretKey === secretKey) && !fetchedKeys.has(secretKey)) return;
          values[secretKey] = await decrypt(value, {
            namespace: ms.metadata.namespace ?? '',
            managedSecret: ms.metadata.name,
            secretKey,
          });
        }),
      );
    }
    // Retain: keys we wrote before whose source entry is gone stay as they were.
    if ((ms.spec.target?.deletionPolicy ?? 'Retain') === 'Retain' && existing && !ms.spec.target?.template) {
      for (const k of managedKeysOf(existing)) {
        const old = existing.data?.[k];
        if (!(k in values) && old !== undefined && (ms.spec.data ?? []).every((d) => d.secretKey !== k)) {
          values[k] = Buffer.from(old, 'base64').toString('utf8');
        }
      }
    }
    return { values, missing };
  }

  private async sync(
    ms: ManagedSecret,
    key: string,
    state: SyncState,
    existing: SecretObject | undefined,
    now: number,
    ttlMs: number,
  ): Promise<void> {
    const resolved = this.resolveStore(ms);
    if ('reason' in resolved) {
      await this.fail(ms, key, state, resolved.reason, resolved.message, true);
      return;
    }
    const { store, storeKey } = resolved;
    const storeName = storeLabel(store);

    let values: Record<string, string>;
    let servedRegion: ServedRegion | null = null;
    try {
      const { client } = await this.providerClient(storeKey, store);
      const fetched = await this.fetchValues(ms, client, storeKey, ttlMs, existing);
      servedRegion = client.servedRegion?.() ?? null;
      // The store's status names its active region (and endpoint): look at the store now rather than at its next check.
      if (
        servedRegion !== null &&
        (servedRegion.region !== store.status?.activeRegion || servedRegion.endpoint !== store.status?.activeEndpoint)
      )
        this.queue.add(storeKey);
      if (fetched.missing.length > 0 && (ms.spec.target?.deletionPolicy ?? 'Retain') === 'Retain') {
        await this.fail(
          ms,
          key,
          state,
          Reasons.KeyNotFound,
          `${storeName}: key ${fetched.missing.join(', ')} not found; the Secret is left as it was`,
          true,
        );
        return;
      }
      values = fetched.values;
      const template = ms.spec.target?.template;
      if (template) {
        const rendered = renderTemplates(template.data, values);
        values = template.mergePolicy === 'Merge' ? { ...values, ...rendered } : rendered;
      }
    } catch (err) {
      if (err instanceof DecryptError) {
        await this.fail(ms, key, state, Reasons.DecryptFailed, `${storeName}: ${err.message}`, false);
      } else if (err instanceof TemplateError) {
        await this.fail(ms, key, state, Reasons.InvalidTemplate, err.message, false);
      } else if (err instanceof ProviderConfigError) {
        this.dropClient(storeKey);
        await this.fail(ms, key, state, Reasons.StoreNotReady, `${storeName}: ${err.message}`, true);
      } else {
        this.dropClient(storeKey);
        await this.fail(ms, key, state, Reasons.ProviderError, `${storeName}: ${errorMessage(err)}`, true);
      }
      return;
    }

    const hmacKey = this.hmacKey as Buffer;
    const previousHmac = ms.status?.syncedVersion;
    const desired = buildDesired(ms, values, hmacKey);
    const plan = planSecretWrite(ms, desired, existing, hmacKey);
    const secretRef = `Secret ${desired.namespace}/${desired.name}`;
    let wrote = false;
    try {
      switch (plan.action) {
        case 'none':
          break;
        case 'conflict':
          await this.fail(ms, key, state, Reasons.SecretConflict, plan.message, true);
          return;
        case 'missing':
          await this.fail(ms, key, state, Reasons.TargetMissing, plan.message, true);
          return;
        case 'create':
          await this.client.request('POST', `/api/v1/namespaces/${desired.namespace}/secrets`, { body: plan.body });
          this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'create' });
          wrote = true;
          break;
        case 'update':
          await this.client.request('PUT', `/api/v1/namespaces/${desired.namespace}/secrets/${desired.name}`, {
            body: plan.body,
          });
          this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'update' });
          wrote = true;
          break;
        case 'recreate':
          await this.client.request('DELETE', `/api/v1/namespaces/${desired.namespace}/secrets/${desired.name}`);
          await this.client.request('POST', `/api/v1/namespaces/${desired.namespace}/secrets`, { body: plan.body });
          this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'delete' });
          this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'create' });
          wrote = true;
          break;
      }
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) {
        // Our cache was behind the server, or the Secret is not ours: look again shortly, asking the server.
        state.probeTarget = true;
        this.queue.addAfter(key, 200);
        return;
      }
      await this.fail(ms, key, state, Reasons.WriteFailed, `could not write ${secretRef}: ${errorMessage(err)}`, true);
      return;
    }

    state.lastCheck = now;
    state.lastFailed = false;
    this.queue.forget(key);
    const keyCount = Object.keys(desired.data).length;
    const message =
      plan.action === 'none' && (ms.spec.target?.creationPolicy ?? 'Owner') === 'None'
        ? `values fetched from ${storeName} (${keyCount} keys); creationPolicy None writes no Secret`
        : `${secretRef} in sync with ${storeName} (${keyCount} keys)`;
    const statusChanged = await this.writeStatus(
      ms,
      { type: 'Ready', status: 'True', reason: Reasons.Synced, message },
      desired.hmac,
      wrote,
      servedRegion,
    );
    this.metrics.syncs.inc({ result: wrote ? 'synced' : 'unchanged', reason: Reasons.Synced });
    if (wrote) this.afterSecretWritten(ms, desired.name, previousHmac, desired.hmac);
    if (wrote) {
      this.events.emit(
        this.eventTarget(ms),
        'Normal',
        Reasons.Synced,
        `${secretRef} ${plan.action === 'create' ? 'created' : 'updated'} (${keyCount} keys)`,
      );
      this.log.info('synced', {
        managedSecret: cacheKey(ms),
        store: storeName,
        secret: secretRef,
        action: plan.action,
        keys: keyCount,
      });
    } else if (statusChanged) {
      this.log.info('in sync', { managedSecret: cacheKey(ms), store: storeName, secret: secretRef });
    }
    this.scheduleRefresh(key, ms, state);
  }

  private async fail(
    ms: ManagedSecret,
    key: string,
    state: SyncState,
    reason: string,
    message: string,
    retry: boolean,
  ): Promise<void> {
    state.lastFailed = true;
    this.metrics.syncs.inc({ result: 'error', reason });
    this.log.warn('sync failed', { managedSecret: cacheKey(ms), reason, message });
    this.events.emit(this.eventTarget(ms), 'Warning', reason, message);
    await this.writeStatus(ms, { type: 'Ready', status: 'False', reason, message }, ms.status?.syncedVersion, false);
    if (retry) this.queue.addRateLimited(key);
  }

  /** Writes status only when something in it changed; lastSyncTime moves only with data or Ready. */
  private async writeStatus(
    ms: ManagedSecret,
    ready: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>,
    syncedVersion: string | undefined,
    wrote: boolean,
    /** The region (and endpoint) that served (stores with failover); null: none (cleared); undefined: unchanged. */
    served?: ServedRegion | null,
  ): Promise<boolean> {
    const old = ms.status ?? {};
    const { conditions, changed } = setCondition(old.conditions, {
      ...ready,
      observedGeneration: ms.metadata.generation,
    });
    const readyStatusChanged = getCondition(old.conditions, 'Ready')?.status !== ready.status;
    const status: ManagedSecretStatus = {
      conditions,
      observedGeneration: ms.metadata.generation,
      secretName: (ms.spec.target?.creationPolicy ?? 'Owner') === 'None' ? undefined : targetName(ms),
      syncedVersion,
      lastSyncTime:
        wrote || readyStatusChanged || !old.lastSyncTime
          ? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
          : old.lastSyncTime,
      region: served === undefined ? old.region : (served?.region ?? undefined),
      endpoint: served === undefined ? old.endpoint : (served?.endpoint ?? undefined),
    };
    const same =
      !changed &&
      old.observedGeneration === status.observedGeneration &&
      old.secretName === status.secretName &&
      old.syncedVersion === status.syncedVersion &&
      old.lastSyncTime === status.lastSyncTime &&
      old.region === status.region &&
      old.endpoint === status.endpoint;
    if (same) return false;
    try {
      // A region or endpoint no longer reported is removed (null in a merge patch).
      const clearRegion = status.region === undefined && old.region !== undefined;
      const clearEndpoint = status.endpoint === undefined && old.endpoint !== undefined;
      const updated = await this.patchStatus(ms, {
        ...status,
        ...(clearRegion ? { region: null } : {}),
        ...(clearEndpoint ? { endpoint: null } : {}),
      });
      // Keep the cache's copy current so the next reconcile compares against what we wrote.
      ms.status = (updated as ManagedSecret).status ?? status;
      this.metrics.kubeWrites.inc({ resource: 'managedsecrets/status', verb: 'patch' });
    } catch (err) {
      if (!isNotFound(err))
        this.log.warn('could not write status', { managedSecret: cacheKey(ms), error: errorMessage(err) });
    }
    return true;
  }

  private patchStatus(obj: AnyStore | ManagedSecret, status: object): Promise<unknown> {
    const plural =
      obj.kind === 'ManagedSecret'
        ? 'managedsecrets'
        : obj.kind === 'SecretStore'
          ? 'secretstores'
          : 'clustersecretstores';
    const ns = obj.metadata.namespace ? `/namespaces/${obj.metadata.namespace}` : '';
    // A merge patch of status alone: never touches spec, so GitOps tools see no drift from us.
    return this.client.request('PATCH', `${GROUP_PREFIX}${ns}/${plural}/${obj.metadata.name}/status`, {
      body: { status },
      contentType: 'application/merge-patch+json',
    });
  }

  // ------------------------------------------------- rotation and restarts

  /**
   * Starts (or resumes) a due rotation and writes the new value to the store.
   * Returns the rotation when the store holds the new value and the Secret must
   * now be synced; undefined when nothing is due or the rotation failed (the
   * old value stays; Rotated=False says why; retried with back-off).
   */
  private async rotateIfDue(ms: ManagedSecret, key: string, now: number): Promise<ActiveRotation | undefined> {
    if (!rotationDecision(ms, new Date(now)).due) return undefined;
    try {
      validateRotation(ms.spec.rotation as RotationSpec);
    } catch (err) {
      // A spec problem: nothing recorded, nothing written; a spec change brings it back.
      await this.rotator.fail(ms, errorMessage(err), Reasons.InvalidSpec);
      return undefined;
    }
    let active: ActiveRotation | undefined;
    try {
      active = await this.rotator.begin(ms, new Date(now));
    } catch (err) {
      this.log.warn('could not record the rotation in status; not rotating yet', {
        managedSecret: cacheKey(ms),
        error: errorMessage(err),
      });
      this.queue.addRateLimited(key);
      return undefined;
    }
    if (!active) return undefined;
    const resolved = this.resolveStore(ms);
    if ('reason' in resolved) {
      await this.rotator.fail(ms, resolved.message);
      this.queue.addRateLimited(key);
      return undefined;
    }
    const { store, storeKey } = resolved;
    const storeName = storeLabel(store);
    try {
      const { client } = await this.providerClient(storeKey, store);
      await this.rotator.write(ms, client, active, storeName);
    } catch (err) {
      this.dropClient(storeKey);
      await this.rotator.fail(ms, `${storeName}: ${errorMessage(err)}`);
      this.queue.addRateLimited(key);
      return undefined;
    }
    // The next reads of this store must see the new version.
    this.fetchCache.invalidate(storeKey);
    return active;
  }

  /** After the sync: the Secret holds the new value only if the sync succeeded now; else the rotation resumes later. */
  private async finishRotation(
    ms: ManagedSecret,
    key: string,
    state: SyncState,
    active: ActiveRotation,
    now: number,
  ): Promise<void> {
    if (state.lastCheck !== now || state.lastFailed) {
      await this.rotator.fail(
        ms,
        'the new value is in the store but the Secret could not be updated yet',
        'RotationPending',
      );
      return;
    }
    try {
      await this.rotator.finish(ms, active, new Date());
    } catch (err) {
      this.log.warn('could not record the finished rotation; it is finished again (same token) on the next pass', {
        managedSecret: cacheKey(ms),
        error: errorMessage(err),
      });
      this.queue.addRateLimited(key);
      return;
    }
    this.scheduleRotation(key, ms);
  }

  private scheduleRotation(key: string, ms: ManagedSecret): void {
    const decision = rotationDecision(ms, new Date());
    if (decision.next) this.queue.addAfter(key, Math.max(decision.next.getTime() - Date.now(), 500));
    // Due (or in progress) but not acted on in this pass, say because the status seen here predates
    // the pass that finished it: look again soon rather than wait for a watch event or the refresh.
    // A resumed rotation reuses its idempotency token, so this never rotates twice.
    else if (decision.due) this.queue.addAfter(key, 5_000);
  }

  /** A real data change (not a create, not a no-op, not a drift repair) triggers rollout restarts. */
  private afterSecretWritten(
    ms: ManagedSecret,
    secretName: string,
    previousHmac: string | undefined,
    hmac: string,
  ): void {
    if (!ms.spec.rolloutRestart || previousHmac === undefined || previousHmac === hmac) return;
    void this.restarter
      .secretChanged(ms, secretName)
      .catch((err: unknown) =>
        this.log.warn('rollout restart scheduling failed', { managedSecret: cacheKey(ms), error: errorMessage(err) }),
      );
  }

  private async patchRotationStatus(
    ms: ManagedSecret,
    status: Record<string, unknown>,
  ): Promise<ManagedSecretStatus | undefined> {
    const updated = (await this.patchStatus(ms, status)) as ManagedSecret;
    this.metrics.kubeWrites.inc({ resource: 'managedsecrets/status', verb: 'patch' });
    return updated.status;
  }

  private updateRotationGauges(now: number): void {
    const soonest = new Map<string, number>();
    for (const ms of this.managedSecrets.list()) {
      const ms_ = rotationDueInMs(ms, now);
      if (ms_ === undefined) continue;
      const ns = ms.metadata.namespace ?? '';
      soonest.set(ns, Math.min(soonest.get(ns) ?? Infinity, ms_));
    }
    this.metrics.rotationDue.reset();
    for (const [namespace, ms] of soonest) this.metrics.rotationDue.set({ namespace }, ms / 1000);
  }

  private updateGauges(): void {
    const counts: Record<string, number> = { True: 0, False: 0, Unknown: 0 };
    let oldest = 0;
    let overdue = 0;
    const now = Date.now();
    for (const ms of this.managedSecrets.list()) {
      const status = getCondition(ms.status?.conditions, 'Ready')?.status ?? 'Unknown';
      counts[status] = (counts[status] ?? 0) + 1;
      const st = this.state.get(keyOf.ms(ms.metadata.namespace ?? '', ms.metadata.name));
      if (st?.lastCheck && st.intervalMs) {
        oldest = Math.max(oldest, now - st.lastCheck);
        if (now - st.lastCheck > 2 * st.intervalMs) overdue += 1;
      }
    }
    for (const [ready, n] of Object.entries(counts)) this.metrics.managedSecrets.set({ ready }, n);
    for (const [kind, informer] of [
      ['SecretStore', this.secretStores],
      ['ClusterSecretStore', this.clusterStores],
    ] as const) {
      const c: Record<string, number> = { True: 0, False: 0, Unknown: 0 };
      for (const s of informer.list()) {
        const st = getCondition(s.status?.conditions, 'Ready')?.status ?? 'Unknown';
        c[st] = (c[st] ?? 0) + 1;
      }
      for (const [ready, n] of Object.entries(c)) this.metrics.storesReady.set({ kind, ready }, n);
    }
    this.updateRotationGauges(now);
    this.metrics.lastCheck.set(oldest / 1000);
    this.metrics.overdue.set(overdue);
    this.metrics.queueDepth.set(this.queue.depth);
  }
}

function cacheKey(ms: ManagedSecret): string {
  return objectKey(ms as ManagedSecret & KubeObject);
}
