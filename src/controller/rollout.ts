// Rollout restarts: when a Secret's data actually changed, the workloads that
// use it get `secretsync.io/restarted-at` on their pod template, so their
// controllers roll the Pods. Coordinated, not a storm:
//  - per workload, changes within the debounce window cause one restart;
//  - at most `maxConcurrent` restarts in flight across the cluster (a restart
//    is in flight until the workload's controller has observed the patch, or
//    30 s), the rest wait their turn;
//  - a ManagedSecret whose data changes more than N times an hour is flapping:
//    it stops triggering restarts, and says so in status and an Event.
// Exactly once across shard moves, leader changes and restarts: the pending
// restart is durable in status.rolloutRestart (written with the sync that
// changed the data), whoever holds the ManagedSecret carries it out at its
// notBefore, and clears it afterwards. The workload patch records what it
// restarted for (`secretsync.io/restarted-for`), so a restart that finds its
// own entry there (a crash between the patch and the clear) is not sent again.
// Patches are JSON merge patches of those annotations, field manager secretsync,
// with the workload's resourceVersion as precondition; writes go through the
// ManagedSecret's shard fence.
import { isFenceError, SecretsyncError } from '../api/errors.js';
import {
  ANNOTATION_RESTARTED_AT,
  ANNOTATION_RESTARTED_FOR,
  Reasons,
  type LabelSelector,
  type ManagedSecret,
  type ManagedSecretStatus,
  type RolloutRestartStatus,
  type WorkloadKind,
} from '../api/types.js';
import type { KubeClient, WriteFence } from '../kube/client.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { setCondition } from './conditions.js';
import type { EventRecorder, EventTarget } from './events.js';
import { parseDuration } from './schedule.js';

export const DEFAULT_DEBOUNCE_MS = 10_000;
export const DEFAULT_MAX_CHANGES_PER_HOUR = 5;
export const DEFAULT_MAX_CONCURRENT_RESTARTS = 10;
export const FIELD_MANAGER = 'secretsync';
const HOUR_MS = 3_600_000;
const OBSERVE_TIMEOUT_MS = 30_000;

const PLURAL: Record<WorkloadKind, string> = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
};
const KINDS = Object.keys(PLURAL) as WorkloadKind[];

export interface Workload {
  kind: WorkloadKind;
  namespace: string;
  name: string;
}

interface PodSpecLike {
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  ephemeralContainers?: ContainerLike[];
  volumes?: {
    secret?: { secretName?: string };
    projected?: { sources?: { secret?: { name?: string } }[] };
  }[];
}

interface ContainerLike {
  env?: { valueFrom?: { secretKeyRef?: { name?: string } } }[];
  envFrom?: { secretRef?: { name?: string } }[];
}

interface WorkloadObject {
  metadata: { name: string; namespace?: string; generation?: number; resourceVersion?: string };
  spec?: { template?: { metadata?: { annotations?: Record<string, string> }; spec?: PodSpecLike } };
  status?: { observedGeneration?: number };
}

/** Whether a pod spec uses the Secret: env secretKeyRef, envFrom secretRef, a secret volume, or a projected one. */
export function podSpecReferencesSecret(spec: PodSpecLike | undefined, secretName: string): boolean {
  if (!spec) return false;
  const containers = [...(spec.containers ?? []), ...(spec.initContainers ?? []), ...(spec.ephemeralContainers ?? [])];
  for (const c of containers) {
    if ((c.env ?? []).some((e) => e.valueFrom?.secretKeyRef?.name === secretName)) return true;
    if ((c.envFrom ?? []).some((e) => e.secretRef?.name === secretName)) return true;
  }
  return (spec.volumes ?? []).some(
    (v) =>
      v.secret?.secretName === secretName || (v.projected?.sources ?? []).some((s) => s.secret?.name === secretName),
  );
}

/** A LabelSelector as the API server's labelSelector query parameter. */
export function selectorString(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

const workloadKey = (w: Workload) => `${w.kind}/${w.namespace}/${w.name}`;
const workloadPath = (w: Workload) => `/apis/apps/v1/namespaces/${w.namespace}/${PLURAL[w.kind]}/${w.name}`;

/** Hex digits of a syncedVersion the restarted-for annotation keeps: 64 bits tell one ManagedSecret's versions apart. */
const VERSION_TAG_CHARS = 16;
/** Entries restarted-for keeps, newest first: a workload many ManagedSecrets restart stays bounded (names ≤ 253). */
export const MAX_RESTARTED_FOR_ENTRIES = 16;
/** A workload patch that met a newer resourceVersion reads the workload again, this many times at most. */
const PATCH_ATTEMPTS = 5;

/** The short form of a syncedVersion (`hmac-sha256:<hex>`) kept on the workload. */
export const versionTag = (version: string): string =>
  version.slice(version.lastIndexOf(':') + 1).slice(0, VERSION_TAG_CHARS);

/** The restarted-for annotation as ManagedSecret name → version tag, newest first. */
export function parseRestartedFor(value: string | undefined): Map<string, string> {
  const entries = new Map<string, string>();
  for (const part of (value ?? '').split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    if (!entries.has(name)) entries.set(name, part.slice(at + 1).trim());
  }
  return entries;
}

/** Whether a workload whose pod template carries `annotation` was restarted for this ManagedSecret at this version. */
export function alreadyRestartedFor(annotation: string | undefined, msName: string, version: string): boolean {
  return parseRestartedFor(annotation).get(msName) === versionTag(version);
}

/** The annotation with these restarts (ManagedSecret name, version) first, older entries after, bounded. */
export function recordRestartedFor(annotation: string | undefined, restarted: Iterable<[string, string]>): string {
  const entries = new Map<string, string>();
  for (const [name, version] of restarted) entries.set(name, versionTag(version));
  for (const [name, tag] of parseRestartedFor(annotation)) if (!entries.has(name)) entries.set(name, tag);
  return [...entries]
    .slice(0, MAX_RESTARTED_FOR_ENTRIES)
    .map(([name, tag]) => `${name}=${tag}`)
    .join(',');
}

/** What a data change means for rollout restarts (RolloutRestarter.planChange); reported by `follow`. */
export interface RestartPlan {
  /** status.rolloutRestart to record with the sync; undefined: leave what is there. */
  intent?: RolloutRestartStatus;
  /** What `follow` reports: restarts turned off, the source flapping (first time), or calm again. */
  report?: 'disabled' | 'flapping' | 'calm';
  changes: number;
  limit: number;
}

export interface RolloutDeps {
  client: KubeClient;
  log: Logger;
  metrics: Metrics;
  events: EventRecorder;
  eventTarget(ms: ManagedSecret): EventTarget;
  patchStatus(ms: ManagedSecret, status: Record<string, unknown>): Promise<ManagedSecretStatus | undefined>;
  /** Removes status.rolloutRestart if it still asks for `version` (StatusWriter.clearRolloutRestart). */
  clearIntent(ms: ManagedSecret, version: string, fence?: WriteFence): Promise<ManagedSecretStatus | undefined>;
  /**
   * Sharded mode: the fence of the ManagedSecret's shard. The workload patch and
   * the status clear are writes for that shard: a replica that lost it must not
   * make them (the new owner carries the restart out).
   */
  shardFence?(ms: ManagedSecret): WriteFence | undefined;
  /** Restarts in flight at once, cluster-wide. */
  maxConcurrent: number;
  /**
   * Whether the cluster admin turned rollout restarts on (chart value
   * rolloutRestarts.enabled, which also grants the RBAC to patch workloads).
   * Off: a data change restarts nothing and the ManagedSecret says why.
   */
  enabled: boolean;
  now?: () => number;
}

/** A ManagedSecret's restart for one version, asked of its workloads. */
interface Ask {
  source: string;
  version: string;
  ms: ManagedSecret;
  fence: WriteFence | undefined;
}


const sourceOf = (ms: ManagedSecret) => `${ms.metadata.namespace}/${ms.metadata.name}`;

export class RolloutRestarter {
  /** Workloads with a restart scheduled, and the restarts (one per ManagedSecret) it serves. */
  private readonly pending = new Map<string, { workload: Workload; timer: NodeJS.Timeout; asks: Map<string, Ask> }>();
  /** Intents this replica carries out now: per ManagedSecret, the version and the workloads not done yet. */
  private readonly carrying = new Map<string, { version: string; remaining: number }>();
  /** The version whose intent this replica last cleared, per ManagedSecret: the cache may still show it. */
  private readonly cleared = new Map<string, string>();
  /** Data changes per ManagedSecret within the last hour. */
  private readonly changes = new Map<string, number[]>();
  /** The version last planned per ManagedSecret: planned again (its record was lost), it is not a new change. */
  private readonly lastPlanned = new Map<string, string>();
  private readonly flapping = new Set<string>();
  private inFlight = 0;
  private readonly slots: (() => void)[] = [];
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly deps: RolloutDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Restarts in flight now (for tests and metrics). */
  get restartsInFlight(): number {
    return this.inFlight;
  }

  /**
   * The Secret now holds `version` where status last recorded another (a change
   * written now, or one written by a pass whose status record was lost): the
   * intent to record in the same status patch, after the flap limit. A change
   * within the window of a pending restart rides along (same notBefore, the
   * newer version); otherwise a new window opens. The same version planned again
   * counts once towards the flap limit.
   */
  planChange(ms: ManagedSecret, version: string): RestartPlan {
    const spec = ms.spec.rolloutRestart;
    const limit = spec?.maxChangesPerHour ?? DEFAULT_MAX_CHANGES_PER_HOUR;
    if (!spec) return { changes: 0, limit };
    if (!this.deps.enabled) return { report: 'disabled', changes: 0, limit };
    const source = sourceOf(ms);
    const now = this.now();
    const recent = (this.changes.get(source) ?? []).filter((t) => now - t < HOUR_MS);
    if (this.lastPlanned.get(source) !== version) recent.push(now);
    this.lastPlanned.set(source, version);
    this.changes.set(source, recent);
    if (recent.length > limit) {
      const first = !this.flapping.has(source);
      this.flapping.add(source);
      return { ...(first ? { report: 'flapping' as const } : {}), changes: recent.length, limit };
    }
    const calm = this.flapping.delete(source);
    const pending = ms.status?.rolloutRestart;
    const pendingAt = pending ? Date.parse(pending.notBefore) : NaN;
    const notBefore = pendingAt > now ? pendingAt : now + debounceOf(spec.debounce);
    return {
      intent: { pendingVersion: version, notBefore: new Date(notBefore).toISOString() },
      ...(calm ? { report: 'calm' as const } : {}),
      changes: recent.length,
      limit,
    };
  }

  /** After the sync was recorded: says what the plan means (Events, the condition), then carries out the intent. */
  async follow(ms: ManagedSecret, secretName: string, plan: RestartPlan): Promise<void> {
    const source = sourceOf(ms);
    if (plan.report === 'disabled') {
      this.deps.metrics.rolloutRestarts.inc({ result: 'suppressed' });
      const message =
        'rollout restarts are turned off in this cluster (operator flag --rollout-restarts, chart value rolloutRestarts.enabled): the workloads were not restarted';
      this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', Reasons.RestartsDisabled, message);
      await this.setCondition(ms, 'False', Reasons.RestartsDisabled, message);
      return;
    }
    if (plan.intent === undefined && plan.changes > plan.limit) {
      this.deps.metrics.rolloutRestarts.inc({ result: 'suppressed' });
      if (plan.report === 'flapping') {
        const message = `the data of Secret ${secretName} changed ${plan.changes} times within an hour (more than ${plan.limit}): restarts stop until it changes less often`;
        this.deps.log.warn('rollout restarts suppressed: flapping source', {
          managedSecret: source,
          changes: plan.changes,
        });
        this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', Reasons.Flapping, message);
        await this.setCondition(ms, 'False', Reasons.Flapping, message);
      }
      return;
    }
    if (plan.report === 'calm')
      await this.setCondition(ms, 'True', Reasons.Restarted, 'changes are back below the limit: restarts resume');
    this.resume(ms, secretName, plan.intent);
  }

  /**
   * Carries out the ManagedSecret's pending restart (status.rolloutRestart, or
   * `intent` just recorded) unless this replica already does. Called on every
   * pass: a replica that gains the shard, a new leader or a restarted operator
   * finds the intent here and schedules it at notBefore (at once if past).
   */
  resume(ms: ManagedSecret, secretName: string, intent = ms.status?.rolloutRestart): void {
    const source = sourceOf(ms);
    if (!intent) {
      this.cleared.delete(source);
      return;
    }
    if (this.stopped) return;
    if (this.carrying.get(source)?.version === intent.pendingVersion) return;
    // Cleared by us already: the cache has not seen the clear yet.
    if (this.cleared.get(source) === intent.pendingVersion) return;
    const ask: Ask = {
      source,
      version: intent.pendingVersion,
      ms,
      fence: this.deps.shardFence?.(ms),
    };
    this.carrying.set(source, { version: ask.version, remaining: 0 });
    const run = this.start(ask, secretName, Date.parse(intent.notBefore)).finally(() => this.running.delete(run));
    this.running.add(run);
  }

  /** Forgets a ManagedSecret that is gone. */
  forget(ms: ManagedSecret): void {
    const source = sourceOf(ms);
    this.carrying.delete(source);
    this.cleared.delete(source);
    this.changes.delete(source);
    this.lastPlanned.delete(source);
    this.flapping.delete(source);
  }

  /** Finds the workloads and schedules a restart of each at notBefore; no workload (or none wanted): clears at once. */
  private async start(ask: Ask, secretName: string, notBefore: number): Promise<void> {
    const { ms } = ask;
    if (!ms.spec.rolloutRestart || !this.deps.enabled) {
      // The spec no longer asks for restarts (or the cluster turned them off): nothing to carry out.
      await this.finish(ask);
      return;
    }
    let workloads: Workload[];
    try {
      workloads = await this.targets(ms, secretName);
    } catch (err) {
      // Left in status: the next pass tries again.
      this.carrying.delete(ask.source);
      this.deps.metrics.rolloutRestarts.inc({ result: 'error' });
      this.deps.log.warn('could not find workloads to restart', {
        managedSecret: ask.source,
        error: errorMessage(err),
      });
      this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', Reasons.RestartFailed, errorMessage(err));
      return;
    }
    const entry = this.carrying.get(ask.source);
    if (!entry || entry.version !== ask.version || this.stopped) return;
    if (workloads.length === 0) {
      await this.finish(ask);
      return;
    }
    entry.remaining = workloads.length;
    const delay = Number.isFinite(notBefore) ? Math.max(0, notBefore - this.now()) : 0;
    for (const w of workloads) this.schedule(w, ask, delay);
  }

  /** The listed workloads (by name or selector) and, with auto, the ones whose pod spec uses the Secret. */
  async targets(ms: ManagedSecret, secretName: string): Promise<Workload[]> {
    const namespace = ms.metadata.namespace ?? '';
    const spec = ms.spec.rolloutRestart ?? {};
    const found = new Map<string, Workload>();
    const add = (w: Workload) => found.set(workloadKey(w), w);
    for (const t of spec.targets ?? []) {
      if (t.name !== undefined) add({ kind: t.kind, namespace, name: t.name });
      else if (t.selector) {
        const list = await this.deps.client.list<WorkloadObject>(
          `/apis/apps/v1/namespaces/${namespace}/${PLURAL[t.kind]}`,
          { labelSelector: selectorString(t.selector) },
        );
        for (const o of list.items) add({ kind: t.kind, namespace, name: o.metadata.name });
      }
    }
    if (spec.auto) {
      for (const kind of KINDS) {
        const list = await this.deps.client.list<WorkloadObject>(
          `/apis/apps/v1/namespaces/${namespace}/${PLURAL[kind]}`,
        );
        for (const o of list.items)
          if (podSpecReferencesSecret(o.spec?.template?.spec, secretName))
            add({ kind, namespace, name: o.metadata.name });
      }
    }
    return [...found.values()];
  }

  private schedule(workload: Workload, ask: Ask, delayMs: number): void {
    const key = workloadKey(workload);
    const pending = this.pending.get(key);
    if (pending) {
      // Already scheduled within the window: this change rides along (a newer version of the same source replaces its older one).
      pending.asks.set(ask.source, ask);
      return;
    }
    const timer = setTimeout(() => {
      const entry = this.pending.get(key);
      this.pending.delete(key);
      if (!entry || this.stopped) return;
      const run = this.restart(workload, [...entry.asks.values()]).finally(() => this.running.delete(run));
      this.running.add(run);
    }, delayMs);
    timer.unref();
    this.pending.set(key, { workload, timer, asks: new Map([[ask.source, ask]]) });
  }

  private async acquire(): Promise<void> {
    if (this.inFlight < Math.max(1, this.deps.maxConcurrent)) {
      this.inFlight += 1;
      return;
    }
    await new Promise<void>((resolve) => this.slots.push(resolve));
    this.inFlight += 1;
  }

  private release(): void {
    this.inFlight -= 1;
    this.slots.shift()?.();
  }

  /**
   * One restart of a workload for the ManagedSecrets that asked: skipped when the
   * workload already records each of them at its version; otherwise the patch of
   * restarted-at and restarted-for (against the resourceVersion just read). Each
   * ask is then done for this workload (the last workload clears its intent),
   * and the slot is held until the workload's controller observed the patch.
   */
  private async restart(workload: Workload, asks: Ask[]): Promise<void> {
    await this.acquire();
    let live = asks;
    try {
      if (this.stopped) return;
      // Asks whose shard went since they were scheduled are the new owner's.
      live = asks.filter((a) => {
        try {
          a.fence?.assertHeld();
          return true;
        } catch {
          this.dropped(a, workload);
          return false;
        }
      });
      if (live.length === 0) return;
      const fence = live[0]?.fence;
      const sources = live.map((a) => a.source);
      let patched: WorkloadObject | undefined;
      for (let attempt = 1; ; attempt++) {
        const current = await this.deps.client.get<WorkloadObject>(workloadPath(workload));
        const recorded = current.spec?.template?.metadata?.annotations?.[ANNOTATION_RESTARTED_FOR];
        const todo = live.filter((a) => !alreadyRestartedFor(recorded, a.ms.metadata.name, a.version));
        if (todo.length === 0) {
          // A replica restarted it for these versions and went before clearing the intent: not a second time.
          this.deps.metrics.rolloutRestarts.inc({ result: 'skipped' });
          this.deps.log.info('rollout restart already done for this version', {
            workload: workloadKey(workload),
            sources,
          });
          break;
        }
        try {
          patched = await this.deps.client.request<WorkloadObject>('PATCH', workloadPath(workload), {
            query: { fieldManager: FIELD_MANAGER },
            body: {
              metadata: { resourceVersion: current.metadata.resourceVersion },
              spec: {
                template: {
                  metadata: {
                    annotations: {
                      [ANNOTATION_RESTARTED_AT]: new Date(this.now()).toISOString(),
                      [ANNOTATION_RESTARTED_FOR]: recordRestartedFor(
                        recorded,
                        todo.map((a) => [a.ms.metadata.name, a.version]),
                      ),
                    },
                  },
                },
              },
            },
            contentType: 'application/merge-patch+json',
            ...(fence ? { fence } : {}),
          });
        } catch (err) {
          // Someone wrote the workload since it was read (another replica's restart, say): read it again.
          if ((err as { status?: number }).status === 409 && attempt < PATCH_ATTEMPTS) continue;
          throw err;
        }
        this.deps.metrics.rolloutRestarts.inc({ result: 'restarted' });
        this.deps.metrics.kubeWrites.inc({ resource: PLURAL[workload.kind], verb: 'patch' });
        const message = `restarted ${workload.kind} ${workload.name}: Secret data changed (${sources.join(', ')})`;
        this.deps.log.info('rollout restart', { workload: workloadKey(workload), sources });
        for (const a of todo) this.deps.events.emit(this.deps.eventTarget(a.ms), 'Normal', Reasons.Restarted, message);
        break;
      }
      // Sent (or found done): the intents can go now; the slot is held until the controller has seen the patch.
      const served = live;
      live = [];
      await Promise.all(served.map((a) => this.done(a)));
      if (patched) await this.observed(workload, patched.metadata.generation);
    } catch (err) {
      if (isFenceError(err)) {
        for (const a of live) this.dropped(a, workload);
        live = [];
        return;
      }
      this.deps.metrics.rolloutRestarts.inc({ result: 'error' });
      const message = `could not restart ${workload.kind} ${workload.name}: ${errorMessage(err)}`;
      this.deps.log.warn('rollout restart failed', { workload: workloadKey(workload), error: errorMessage(err) });
      for (const a of live)
        this.deps.events.emit(this.deps.eventTarget(a.ms), 'Warning', Reasons.RestartFailed, message);
      if (err instanceof SecretsyncError && err.retry === 'transient') {
        // Left in status: the next pass of each ManagedSecret tries again (a workload restarted meanwhile is skipped).
        for (const a of live) if (this.carrying.get(a.source)?.version === a.version) this.carrying.delete(a.source);
        live = [];
      }
    } finally {
      this.release();
    }
    await Promise.all(live.map((a) => this.done(a)));
  }

  /** An ask whose shard this replica lost: forgotten here, so that it is carried out again if the shard comes back. */
  private dropped(ask: Ask, workload: Workload): void {
    this.deps.log.debug('shard lost before a rollout restart; left to its new owner', {
      managedSecret: ask.source,
      workload: workloadKey(workload),
    });
    if (this.carrying.get(ask.source)?.version === ask.version) this.carrying.delete(ask.source);
  }

  /** One workload of the ask is restarted (or skipped, or failed for good); the last one clears the intent. */
  private async done(ask: Ask): Promise<void> {
    const entry = this.carrying.get(ask.source);
    if (!entry || entry.version !== ask.version) return;
    entry.remaining -= 1;
    if (entry.remaining > 0) return;
    await this.finish(ask);
  }

  /** Clears the intent (only if it still asks for this version), through the shard fence. */
  private async finish(ask: Ask): Promise<void> {
    if (this.carrying.get(ask.source)?.version === ask.version) this.carrying.delete(ask.source);
    try {
      await this.deps.clearIntent(ask.ms, ask.version, ask.fence);
      this.cleared.set(ask.source, ask.version);
    } catch (err) {
      // Left in status: the next pass (here, or at the new owner) finds the workloads done and clears it.
      if (!isFenceError(err))
        this.deps.log.warn('could not clear the pending rollout restart', {
          managedSecret: ask.source,
          error: errorMessage(err),
        });
    }
  }

  /** Waits (bounded) until the workload's controller has seen the new template. */
  private async observed(workload: Workload, generation: number | undefined): Promise<void> {
    if (generation === undefined) return;
    const deadline = this.now() + OBSERVE_TIMEOUT_MS;
    while (!this.stopped && this.now() < deadline) {
      try {
        const o = await this.deps.client.get<WorkloadObject>(workloadPath(workload));
        if ((o.status?.observedGeneration ?? 0) >= generation) return;
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250).unref());
    }
  }

  private async setCondition(ms: ManagedSecret, status: 'True' | 'False', reason: string, message: string) {
    const { conditions, changed } = setCondition(ms.status?.conditions, {
      type: 'RolloutRestart',
      status,
      reason,
      message,
      observedGeneration: ms.metadata.generation,
    });
    if (!changed) return;
    const updated = await this.deps.patchStatus(ms, { conditions }).catch(() => undefined);
    if (updated) ms.status = updated;
  }

  /** Drops scheduled restarts (their intents stay in status for the next holder); lets running ones finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    for (const resolve of this.slots.splice(0)) resolve();
    await Promise.all([...this.running]);
  }
}

/** The debounce window of a spec, the default when absent or unreadable. */
function debounceOf(debounce: string | undefined): number {
  if (debounce === undefined) return DEFAULT_DEBOUNCE_MS;
  try {
    return parseDuration(debounce);
  } catch {
    return DEFAULT_DEBOUNCE_MS;
  }
}
