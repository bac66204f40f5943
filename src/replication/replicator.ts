// Replication to disaster-recovery clusters: for every ReplicationTarget, the
// selected stores (and ManagedSecrets) of this cluster are applied to the DR
// cluster with server-side apply, continuously, and copies whose source is
// gone are pruned — but only after every list on the primary has just
// succeeded, so that an error or a missing CRD here never empties the DR side.
import { KubeconfigError, kubeConfigFromString, type KubeAuth } from '../kube/config.js';
import {
  ANNOTATION_REPLICATION_HASH,
  API_VERSION,
  ReplicationReasons,
  type ReplicationTarget,
  type ReplicationTargetStatus,
} from '../api/types.js';
import { setCondition } from '../controller/conditions.js';
import { EventRecorder } from '../controller/events.js';
import { parseDuration } from '../controller/schedule.js';
import { WorkQueue } from '../controller/workqueue.js';
import {
  KubeApiError,
  KubeClient,
  type WriteFence,
  isConflict,
  isNotFound,
  type KubeList,
  type KubeObject,
} from '../kube/client.js';
import { collectionPaths } from '../kube/informer-group.js';
import { Informer } from '../kube/informer.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  FIELD_MANAGER,
  clusterStoreSelected,
  credentialSecretsOf,
  desiredCopy,
  desiredSecretCopy,
  namespacedSelected,
  objectRef,
  replicatedSelector,
  resourcePath,
  type CopyContext,
  type DesiredObject,
  type ReplicatedKind,
} from './transform.js';

export interface ReplicatorOptions {
  /** The primary cluster (this one). */
  kubeConfig: KubeAuth;
  logger: Logger;
  metrics: Metrics;
  /** This cluster's name, written on every copy (annotation and label). */
  clusterName: string;
  /** Where kubeconfig Secrets are read from. */
  operatorNamespace: string;
  /** Namespaces the operator watches; empty: the whole cluster. */
  namespaces: string[];
  /** Delay before a failed pass is retried (capped by the target's interval). Default 10 s. */
  retryDelayMs?: number;
  /** Timeout of each request to a DR cluster. Default 15 s. */
  drRequestTimeoutMs?: number;
  /**
   * The leader's write fence: replication runs on the leader only, and a leader
   * that can no longer renew must stop writing here too (status on this
   * cluster, copies in the DR cluster) before its Lease can pass on.
   */
  fence?: WriteFence;
  /** Deadlines of this cluster's API requests (as the operator's flags). */
  kubeRequestTimeoutMs?: number;
  kubeConnectTimeoutMs?: number;
  watchIdleTimeoutMs?: number;
}

/** A pass that failed for one reason the Ready condition names. */
export class ReplicationError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    /** The DR cluster said when to come back (Retry-After): the next pass comes then, not after the retry delay. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ReplicationError';
  }
}

interface PassResult {
  inSync: number;
  applied: number;
  pruned: number;
}

interface DrConnection {
  version: string;
  client: KubeClient;
  server: string;
}

type Source = 'clusterStores' | 'stores' | 'managedSecrets';
const GROUP_PREFIX = `/apis/${API_VERSION}`;
const KIND_OF: Record<Source, Exclude<ReplicatedKind, 'Secret'>> = {
  clusterStores: 'ClusterSecretStore',
  stores: 'SecretStore',
  managedSecrets: 'ManagedSecret',
};
const DEFAULT_INTERVAL_MS = 60_000;

/** Network errors (refused, reset, timed out) as opposed to answers from an API server. */
const isUnreachable = (err: unknown): boolean => !(err instanceof KubeApiError);

/** A short, value-free description of a transport error: its code, or its message. */
function transportError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  return errorMessage(err);
}

/**
 * Runs on the leader only: start it when this replica leads, stop it with the
 * operator. Informers on ReplicationTargets and on the source kinds trigger
 * passes; each target is also re-checked every `spec.interval`.
 */
export class Replicator {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly queue = new WorkQueue({ baseDelayMs: 1_000, maxDelayMs: 60_000 });
  private readonly targets: Informer<ReplicationTarget & KubeObject>;
  private readonly sources: Record<Source, { path: string; informer: Informer<KubeObject> }[]>;
  private readonly events: EventRecorder;
  private readonly connections = new Map<string, DrConnection>();
  /** When each target was last confirmed in sync (ms), for the lag. */
  private readonly lastSuccess = new Map<string, number>();
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly starting = new Map<Informer<KubeObject>, Promise<void>>();
  private worker: Promise<void> | undefined;
  private running = false;

  constructor(private readonly options: ReplicatorOptions) {
    this.log = options.logger;
    this.metrics = options.metrics;
    this.client = new KubeClient(options.kubeConfig, {
      qps: 50,
      burst: 100,
      userAgent: 'secretsync-replication',
      fence: options.fence,
      requestTimeoutMs: options.kubeRequestTimeoutMs,
      connectTimeoutMs: options.kubeConnectTimeoutMs,
      watchIdleTimeoutMs: options.watchIdleTimeoutMs,
    });
    const onError = (what: string) => (err: unknown) =>
      this.log.warn('replication: watch failed; retrying', { resource: what, error: errorMessage(err) });
    this.targets = new Informer(this.client, {
      path: `${GROUP_PREFIX}/replicationtargets`,
      onError: onError('replicationtargets'),
    });
    const ns = options.namespaces;
    const informers = (plural: string, paths: string[]) =>
      paths.map((path) => ({
        path,
        informer: new Informer<KubeObject>(this.client, { path, onError: onError(plural) }),
      }));
    this.sources = {
      clusterStores: informers('clustersecretstores', [`${GROUP_PREFIX}/clustersecretstores`]),
      stores: informers('secretstores', collectionPaths(GROUP_PREFIX, 'secretstores', ns)),
      managedSecrets: informers('managedsecrets', collectionPaths(GROUP_PREFIX, 'managedsecrets', ns)),
    };
    // A ReplicationTarget is cluster-scoped: the API server takes core Events about such objects only in
    // the default namespace (an Event elsewhere must name an object of its own namespace).
    this.events = new EventRecorder(this.client, this.log);
    this.metrics.replicationLagSource = () => this.lags();
  }

  /** Starts the informers (each retries until its first list succeeds) and the worker. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const enqueueAll = () => {
      for (const t of this.targets.list()) this.queue.addAfter(t.metadata.name, 500);
    };
    this.targets.on({
      add: (t) => this.queue.add(t.metadata.name),
      update: (old, cur) => {
        if (old.metadata.generation !== cur.metadata.generation) {
          this.queue.cancel(cur.metadata.name);
          this.queue.add(cur.metadata.name);
        }
      },
      delete: (t) => {
        // The DR copies stay: removing a target must never empty the DR cluster.
        this.queue.cancel(t.metadata.name);
        this.lastSuccess.delete(t.metadata.name);
        this.connections.get(t.metadata.name)?.client.close();
        this.connections.delete(t.metadata.name);
        this.metrics.replicationObjects.remove({ target: t.metadata.name });
      },
    });
    // Status writes (the operator's own, often) change nothing a copy holds: only spec and metadata count.
    const copied = (o: KubeObject) =>
      JSON.stringify([o.metadata.generation, o.metadata.labels, o.metadata.annotations, o.metadata.deletionTimestamp]);
    const onUpdate = (old: KubeObject, cur: KubeObject) => {
      if (copied(old) !== copied(cur)) enqueueAll();
    };
    for (const list of Object.values(this.sources))
      for (const { informer } of list) informer.on({ add: enqueueAll, update: onUpdate, delete: enqueueAll });
    // Source caches start with the first target that needs them (see ensureSynced): an operator without
    // ReplicationTargets keeps no second copy of its ManagedSecrets and stores.
    this.loops.push(this.startInformer(this.targets, 'replicationtargets'));
    this.worker = this.work();
    this.log.info('replication started', { cluster: this.options.clusterName });
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort();
    this.queue.shutDown();
    await this.worker;
    await Promise.all(this.loops);
    await Promise.all([...this.starting.values()].map((p) => p.catch(() => undefined)));
    await this.targets.stop();
    await Promise.all(Object.values(this.sources).flatMap((list) => list.map(({ informer }) => informer.stop())));
    for (const c of this.connections.values()) c.client.close();
    this.connections.clear();
    this.metrics.replicationLagSource = () => [];
    this.client.close();
  }

  /** The first list of an informer, retried with back-off: a missing CRD or RBAC rule here is not fatal. */
  private async startInformer<T extends KubeObject>(informer: Informer<T>, what: string): Promise<void> {
    let delay = 1_000;
    while (!this.abort.signal.aborted) {
      try {
        await informer.start();
        return;
      } catch (err) {
        this.log.warn('replication: cannot list on the primary; retrying', {
          resource: what,
          error: errorMessage(err),
        });
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  private async work(): Promise<void> {
    for (;;) {
      const name = await this.queue.get();
      if (name === undefined) return;
      try {
        await this.reconcile(name);
      } catch (err) {
        this.log.error('replication: pass failed unexpectedly', { target: name, error: errorMessage(err) });
        this.queue.addRateLimited(name);
      } finally {
        this.queue.done(name);
      }
    }
  }

  private lags(): { target: string; seconds: number }[] {
    const now = Date.now();
    return this.targets.list().map((t) => ({
      target: t.metadata.name,
      seconds: Math.max(0, Math.round((now - this.baseline(t)) / 1000)),
    }));
  }

  /** Since when the target has not been confirmed in sync. */
  private baseline(t: ReplicationTarget): number {
    const known = this.lastSuccess.get(t.metadata.name);
    if (known !== undefined) return known;
    const fromStatus = t.status?.lastReplicationTime ?? t.metadata.creationTimestamp;
    const parsed = fromStatus ? Date.parse(fromStatus) : NaN;
    return Number.isNaN(parsed) ? Date.now() : parsed;
  }

  private async reconcile(name: string): Promise<void> {
    const target = this.targets.get(name);
    if (!target) return;
    let intervalMs = DEFAULT_INTERVAL_MS;
    try {
      intervalMs = parseDuration(target.spec.interval ?? '1m');
    } catch {
      // the schema refuses bad durations; keep the default
    }
    const started = Date.now();
    try {
      const result = await this.replicate(target);
      this.lastSuccess.set(name, started);
      this.metrics.replicationObjects.set({ target: name }, result.inSync);
      if (result.applied > 0 || result.pruned > 0) {
        this.events.emit(
          this.eventTarget(target),
          'Normal',
          ReplicationReasons.Replicated,
          `applied ${result.applied} and deleted ${result.pruned} object(s) in the DR cluster; ${result.inSync} in sync`,
        );
      }
      this.log.info('replication pass done', { target: name, ...result });
      await this.writeStatus(target, {
        status: 'True',
        reason: ReplicationReasons.Replicated,
        message: `${result.inSync} object(s) in sync with the DR cluster`,
        objectsInSync: result.inSync,
      });
      this.queue.cancel(name);
      this.queue.addAfter(name, intervalMs);
    } catch (err) {
      const reason = err instanceof ReplicationError ? err.reason : 'InternalError';
      const message = errorMessage(err);
      this.metrics.replicationFailures.inc({ target: name, reason });
      this.log.warn('replication pass failed', { target: name, reason, error: message });
      this.events.emit(this.eventTarget(target), 'Warning', reason, message);
      await this.writeStatus(target, { status: 'False', reason, message });
      this.queue.cancel(name);
      let delayMs = Math.min(intervalMs, this.options.retryDelayMs ?? 10_000);
      if (err instanceof ReplicationError && err.retryAfterMs !== undefined)
        delayMs = Math.min(delayMs, Math.max(1_000, err.retryAfterMs));
      this.queue.addAfter(name, delayMs);
    }
  }

  private eventTarget(t: ReplicationTarget) {
    return { apiVersion: API_VERSION, kind: 'ReplicationTarget', name: t.metadata.name, uid: t.metadata.uid };
  }

  private async writeStatus(
    target: ReplicationTarget,
    ready: { status: 'True' | 'False'; reason: string; message: string; objectsInSync?: number },
  ): Promise<void> {
    const name = target.metadata.name;
    const { conditions } = setCondition(target.status?.conditions, {
      type: 'Ready',
      status: ready.status,
      reason: ready.reason,
      message: ready.message.slice(0, 2048),
      observedGeneration: target.metadata.generation,
    });
    const last = this.lastSuccess.get(name);
    const status: ReplicationTargetStatus = {
      conditions,
      observedGeneration: target.metadata.generation,
      lagSeconds: Math.max(0, Math.round((Date.now() - this.baseline(target)) / 1000)),
      ...(last !== undefined ? { lastReplicationTime: new Date(last).toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}),
      ...(ready.objectsInSync !== undefined ? { objectsInSync: ready.objectsInSync } : {}),
    };
    try {
      await this.client.request('PATCH', `${GROUP_PREFIX}/replicationtargets/${name}/status`, {
        body: { status },
        contentType: 'application/merge-patch+json',
      });
    } catch (err) {
      if (!isNotFound(err))
        this.log.warn('replication: status write failed', { target: name, error: errorMessage(err) });
    }
  }

  // ------------------------------------------------------------------ a pass

  private async replicate(target: ReplicationTarget): Promise<PassResult> {
    const wanted = (['clusterStores', 'stores', 'managedSecrets'] as const).filter((s) => target.spec[s] !== undefined);
    await this.verifySources(wanted);
    const dr = await this.connect(target);
    await this.probe(dr, wanted);
    const ctx: CopyContext = {
      targetName: target.metadata.name,
      clusterName: this.options.clusterName,
      overrides: target.spec.overrides?.aws,
    };
    const desired = await this.desired(target, wanted, ctx);
    const existing = await this.listCopies(dr, target);
    let inSync = 0;
    let applied = 0;
    const failures: string[] = [];
    for (const d of desired.values()) {
      const current = existing.get(objectRef(d.kind, d.namespace, d.name));
      if (d.hash && current?.metadata.annotations?.[ANNOTATION_REPLICATION_HASH] === d.hash) {
        inSync++;
        continue;
      }
      try {
        await this.drRequest(dr, 'PATCH', resourcePath(d.kind, d.namespace, d.name), {
          query: { fieldManager: FIELD_MANAGER, force: true },
          body: d.body,
          contentType: 'application/apply-patch+yaml',
        });
        inSync++;
        if (d.hash || !current) applied++;
      } catch (err) {
        if (err instanceof ReplicationError) throw err;
        failures.push(`${objectRef(d.kind, d.namespace, d.name)}: ${errorMessage(err)}`);
      }
    }
    let pruned = 0;
    if (target.spec.prune !== false) {
      // Again just before deleting: a CRD deletion that began during this pass empties the caches.
      await this.checkSourcesServed(wanted);
      for (const [ref, obj] of existing) {
        if (desired.has(ref)) continue;
        const kind = obj.kind as ReplicatedKind;
        try {
          await this.drRequest(dr, 'DELETE', resourcePath(kind, obj.metadata.namespace, obj.metadata.name), {
            // Exactly the copy that was listed: one changed since (by a person, or a newer pass) is left alone.
            body: {
              kind: 'DeleteOptions',
              apiVersion: 'v1',
              preconditions: { uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
            },
          });
          pruned++;
        } catch (err) {
          if (err instanceof ReplicationError) throw err;
          // Gone already, or changed since it was listed (409): the next pass looks again.
          if (!isNotFound(err) && !isConflict(err)) failures.push(`deleting ${ref}: ${errorMessage(err)}`);
        }
      }
    }
    if (failures.length > 0) {
      const shown = failures.slice(0, 5).join('; ');
      throw new ReplicationError(
        ReplicationReasons.ApplyFailed,
        `${failures.length} object(s) could not be written in the DR cluster (${inSync} in sync): ${shown}${failures.length > 5 ? '; …' : ''}`,
      );
    }
    return { inSync, applied, pruned };
  }

  /**
   * Every source collection answers a fresh list right now, and its informer
   * has synced: without both, neither copies nor deletes happen.
   */
  private async verifySources(wanted: readonly Source[]): Promise<void> {
    for (const source of wanted) {
      for (const { path, informer } of this.sources[source]) {
        try {
          await this.ensureSynced(informer);
        } catch (err) {
          throw new ReplicationError(
            ReplicationReasons.SourceListFailed,
            `listing ${path} on this cluster failed, so nothing is copied or deleted: ${errorMessage(err)}`,
          );
        }
        try {
          await this.client.get(path, { limit: 1 });
        } catch (err) {
          throw new ReplicationError(
            ReplicationReasons.SourceListFailed,
            `listing ${path} on this cluster failed, so nothing is copied or deleted: ${errorMessage(err)}`,
          );
        }
        if (!informer.hasSynced())
          throw new ReplicationError(
            ReplicationReasons.SourceListFailed,
            `the cache of ${path} on this cluster has not synced yet, so nothing is copied or deleted`,
          );
      }
    }
    await this.checkSourcesServed(wanted);
  }

  /**
   * Every source kind is served here and its CRD is not being deleted. While a
   * CRD terminates, its objects are deleted and its lists still answer (without
   * them): copying that state would empty the DR cluster. Discovery (open to
   * every authenticated identity) shows it: a terminating resource loses the
   * create verb.
   */
  private async checkSourcesServed(wanted: readonly Source[]): Promise<void> {
    if (wanted.length === 0) return;
    let resources: { name: string; verbs?: string[] }[];
    try {
      resources =
        (await this.client.get<{ resources?: { name: string; verbs?: string[] }[] }>(GROUP_PREFIX)).resources ?? [];
    } catch (err) {
      throw new ReplicationError(
        ReplicationReasons.SourceListFailed,
        `discovery of ${API_VERSION} on this cluster failed, so nothing is copied or deleted: ${errorMessage(err)}`,
      );
    }
    for (const source of wanted) {
      const plural = resourcePath(KIND_OF[source]).split('/').pop() ?? '';
      const served = resources.find((r) => r.name === plural);
      if (!served)
        throw new ReplicationError(
          ReplicationReasons.SourceListFailed,
          `this cluster does not serve ${plural}.${API_VERSION.split('/')[0]} (CRD missing), so nothing is copied or deleted`,
        );
      if (!(served.verbs ?? []).includes('create'))
        throw new ReplicationError(
          ReplicationReasons.SourceListFailed,
          `the ${plural}.${API_VERSION.split('/')[0]} CRD on this cluster is being deleted, so nothing is copied or deleted`,
        );
    }
  }

  /** Starts a source cache on first use and waits for its first list; a failed start is tried again next pass. */
  private async ensureSynced(informer: Informer<KubeObject>): Promise<void> {
    if (informer.hasSynced()) return;
    let starting = this.starting.get(informer);
    if (!starting) {
      starting = informer.start().finally(() => this.starting.delete(informer));
      this.starting.set(informer, starting);
    }
    await starting;
  }

  /** A client for the DR cluster from the kubeconfig Secret, re-made when the Secret changes. */
  private async connect(target: ReplicationTarget): Promise<DrConnection> {
    const ref = target.spec.kubeconfigSecretRef;
    const key = ref.key ?? 'kubeconfig';
    const ns = this.options.operatorNamespace;
    const where = `Secret ${ns}/${ref.name} key ${key}`;
    let secret: KubeObject & { data?: Record<string, string> };
    try {
      secret = await this.client.get(`/api/v1/namespaces/${ns}/secrets/${ref.name}`);
    } catch (err) {
      if (isNotFound(err))
        throw new ReplicationError(ReplicationReasons.InvalidKubeconfig, `the kubeconfig ${where} does not exist`);
      throw new ReplicationError(
        ReplicationReasons.InvalidKubeconfig,
        `cannot read the kubeconfig ${where}: ${errorMessage(err)}`,
      );
    }
    const version = `${secret.metadata.uid}/${secret.metadata.resourceVersion}/${key}`;
    const cached = this.connections.get(target.metadata.name);
    if (cached?.version === version) return cached;
    const encoded = secret.data?.[key];
    if (!encoded) throw new ReplicationError(ReplicationReasons.InvalidKubeconfig, `${where} is missing or empty`);
    let kc: KubeAuth;
    try {
      kc = await kubeConfigFromString(Buffer.from(encoded, 'base64').toString('utf8'), { embeddedOnly: true });
    } catch (err) {
      const problem = err instanceof KubeconfigError ? err.problem : 'invalid';
      throw new ReplicationError(
        ReplicationReasons.InvalidKubeconfig,
        problem === 'unsafe'
          ? `${where} uses ${(err as KubeconfigError).parts.join(', ')}: replication runs no commands and reads no files of the operator; embed a token or client certificate (and the CA) in the kubeconfig`
          : problem === 'no-cluster'
            ? `${where} has no current cluster with a server`
            : // The parser's message may quote the file: say only where it is.
              `${where} does not parse as a kubeconfig`,
      );
    }
    const cluster = kc.getCurrentCluster() as { server: string };
    cached?.client.close();
    // The client retries a 429 (and, for reads and applies, a 503) after the server's Retry-After within the
    // request's deadline: a DR cluster whose storage is still initialising is waited for, not reported.
    const client = new KubeClient(kc, {
      qps: 20,
      burst: 40,
      userAgent: 'secretsync-replication',
      requestTimeoutMs: this.options.drRequestTimeoutMs ?? 15_000,
      connectTimeoutMs: this.options.kubeConnectTimeoutMs,
      fence: this.options.fence,
    });
    const connection = { version, client, server: cluster.server };
    this.connections.set(target.metadata.name, connection);
    return connection;
  }

  /** One request to the DR cluster with a timeout; transport and auth failures become ReplicationErrors. */
  private async drRequest<T>(
    dr: DrConnection,
    method: string,
    path: string,
    opts: { query?: Record<string, string | number | boolean | undefined>; body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    try {
      return await dr.client.request<T>(method, path, {
        ...opts,
        signal: AbortSignal.timeout(this.options.drRequestTimeoutMs ?? 15_000),
      });
    } catch (err) {
      if (isUnreachable(err))
        throw new ReplicationError(
          ReplicationReasons.ClusterUnreachable,
          `cannot reach the DR cluster at ${dr.server}: ${transportError(err)}`,
        );
      if (err instanceof KubeApiError && (err.status === 401 || err.status === 403))
        throw new ReplicationError(
          ReplicationReasons.Unauthorized,
          `the DR cluster refused the kubeconfig's identity (HTTP ${err.status}): ${err.message}`,
        );
      // Still throttled or unavailable after the client's retries (say, storage that keeps initialising).
      if (err instanceof KubeApiError && (err.status === 429 || err.status === 503))
        throw new ReplicationError(
          ReplicationReasons.ClusterUnreachable,
          `the DR cluster at ${dr.server} is not ready to serve (HTTP ${err.status} ${err.statusReason}${
            err.retryAfterMs !== undefined ? `, retry after ${Math.ceil(err.retryAfterMs / 1000)}s` : ''
          }): ${err.message}`,
          err.retryAfterMs,
        );
      throw err;
    }
  }

  /** The DR cluster answers and serves our kinds (discovery needs no extra permission). */
  private async probe(dr: DrConnection, wanted: readonly Source[]): Promise<void> {
    let served: string[];
    try {
      const discovery = await this.drRequest<{ resources?: { name: string }[] }>(dr, 'GET', GROUP_PREFIX);
      served = (discovery.resources ?? []).map((r) => r.name);
    } catch (err) {
      if (isNotFound(err))
        throw new ReplicationError(
          ReplicationReasons.CRDsMissing,
          `the DR cluster does not serve ${API_VERSION}: install the secretsync CRDs there`,
        );
      throw err;
    }
    const missing = wanted
      .map((s) => resourcePath(KIND_OF[s]).split('/').pop() ?? '')
      .filter((p) => !served.includes(p));
    if (missing.length > 0)
      throw new ReplicationError(
        ReplicationReasons.CRDsMissing,
        `the DR cluster does not serve ${missing.map((p) => `${p}.${API_VERSION.split('/')[0]}`).join(', ')}: install the secretsync CRDs there`,
      );
  }

  /** What the DR cluster should hold for this target, keyed by objectRef. */
  private async desired(
    target: ReplicationTarget,
    wanted: readonly Source[],
    ctx: CopyContext,
  ): Promise<Map<string, DesiredObject>> {
    const out = new Map<string, DesiredObject>();
    const put = (d: DesiredObject) => out.set(objectRef(d.kind, d.namespace, d.name), d);
    const stores: KubeObject[] = [];
    for (const source of wanted) {
      for (const obj of this.sources[source].flatMap(({ informer }) => informer.list())) {
        if (obj.metadata.deletionTimestamp) continue;
        const selected =
          source === 'clusterStores' ? clusterStoreSelected(target, obj) : namespacedSelected(target.spec[source], obj);
        if (!selected) continue;
        put(desiredCopy(KIND_OF[source], obj, ctx));
        if (source !== 'managedSecrets') stores.push(obj);
      }
    }
    if (target.spec.includeCredentials) {
      for (const store of stores) {
        for (const ref of credentialSecretsOf(store)) {
          if (out.has(objectRef('Secret', ref.namespace, ref.name))) continue;
          try {
            put(
              desiredSecretCopy(
                await this.client.get<KubeObject>(resourcePath('Secret', ref.namespace, ref.name)),
                ctx,
              ),
            );
          } catch (err) {
            // A store that names a Secret that is not there is broken here too; its Ready says so.
            if (isNotFound(err)) continue;
            throw new ReplicationError(
              ReplicationReasons.SourceListFailed,
              `reading Secret ${ref.namespace}/${ref.name} (credentials of ${store.kind ?? 'store'} ${store.metadata.name}) on this cluster failed: ${errorMessage(err)}`,
            );
          }
        }
      }
    }
    return out;
  }

  /** What this target (of this source cluster) wrote in the DR cluster, keyed by objectRef. */
  private async listCopies(dr: DrConnection, target: ReplicationTarget): Promise<Map<string, KubeObject>> {
    const out = new Map<string, KubeObject>();
    const kinds: ReplicatedKind[] = ['ClusterSecretStore', 'SecretStore', 'ManagedSecret'];
    // Secrets are listed only when credentials are copied: without that, the receiver has no access to Secrets.
    if (target.spec.includeCredentials) kinds.push('Secret');
    const labelSelector = replicatedSelector(target.metadata.name, this.options.clusterName);
    for (const kind of kinds) {
      let items: KubeObject[] = [];
      let cont: string | undefined;
      try {
        do {
          const page = await this.drRequest<KubeList<KubeObject>>(dr, 'GET', resourcePath(kind), {
            query: { labelSelector, limit: 500, continue: cont },
          });
          items = items.concat(page.items);
          cont = page.metadata.continue || undefined;
        } while (cont);
      } catch (err) {
        // A kind this target does not use may lack its CRD there; nothing of it can be ours then.
        if (isNotFound(err)) continue;
        throw err instanceof ReplicationError
          ? err
          : new ReplicationError(
              ReplicationReasons.ClusterUnreachable,
              `listing ${PLURAL_TEXT[kind]} in the DR cluster failed: ${errorMessage(err)}`,
            );
      }
      for (const item of items) {
        item.kind = kind;
        out.set(objectRef(kind, item.metadata.namespace, item.metadata.name), item);
      }
    }
    return out;
  }
}

const PLURAL_TEXT: Record<ReplicatedKind, string> = {
  ClusterSecretStore: 'ClusterSecretStores',
  SecretStore: 'SecretStores',
  ManagedSecret: 'ManagedSecrets',
  Secret: 'Secrets',
};
