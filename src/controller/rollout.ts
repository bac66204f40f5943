// Rollout restarts: when a Secret's data actually changed, the workloads that
// use it get `secretsync.io/restarted-at` on their pod template, so their
// controllers roll the Pods. Coordinated, not a storm:
//  - per workload, changes within the debounce window cause one restart;
//  - at most `maxConcurrent` restarts in flight across the cluster (a restart
//    is in flight until the workload's controller has observed the patch, or
//    30 s), the rest wait their turn;
//  - a ManagedSecret whose data changes more than N times an hour is flapping:
//    it stops triggering restarts, and says so in status and an Event.
// Patches are JSON merge patches of that one annotation, field manager secretsync.
import {
  ANNOTATION_RESTARTED_AT,
  Reasons,
  type LabelSelector,
  type ManagedSecret,
  type ManagedSecretStatus,
  type WorkloadKind,
} from '../api/types.js';
import type { KubeClient } from '../kube/client.js';
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
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: { template?: { spec?: PodSpecLike } };
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

export interface RolloutDeps {
  client: KubeClient;
  log: Logger;
  metrics: Metrics;
  events: EventRecorder;
  eventTarget(ms: ManagedSecret): EventTarget;
  patchStatus(ms: ManagedSecret, status: Record<string, unknown>): Promise<ManagedSecretStatus | undefined>;
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

export class RolloutRestarter {
  /** Workloads with a restart scheduled, and the ManagedSecrets that asked for it. */
  private readonly pending = new Map<string, { workload: Workload; timer: NodeJS.Timeout; sources: Set<string> }>();
  /** Data changes per ManagedSecret within the last hour. */
  private readonly changes = new Map<string, number[]>();
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

  /** The Secret's data changed (a real change, already written): schedule the restarts it asks for. */
  async secretChanged(ms: ManagedSecret, secretName: string): Promise<void> {
    const spec = ms.spec.rolloutRestart;
    if (!spec || this.stopped) return;
    const source = `${ms.metadata.namespace}/${ms.metadata.name}`;
    if (!this.deps.enabled) {
      this.deps.metrics.rolloutRestarts.inc({ result: 'suppressed' });
      const message =
        'rollout restarts are turned off in this cluster (operator flag --rollout-restarts, chart value rolloutRestarts.enabled): the workloads were not restarted';
      this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', Reasons.RestartsDisabled, message);
      await this.setCondition(ms, 'False', Reasons.RestartsDisabled, message);
      return;
    }
    const now = this.now();
    const recent = (this.changes.get(source) ?? []).filter((t) => now - t < HOUR_MS);
    recent.push(now);
    this.changes.set(source, recent);
    const limit = spec.maxChangesPerHour ?? DEFAULT_MAX_CHANGES_PER_HOUR;
    if (recent.length > limit) {
      this.deps.metrics.rolloutRestarts.inc({ result: 'suppressed' });
      if (!this.flapping.has(source)) {
        this.flapping.add(source);
        const message = `the data of Secret ${secretName} changed ${recent.length} times within an hour (more than ${limit}): restarts stop until it changes less often`;
        this.deps.log.warn('rollout restarts suppressed: flapping source', {
          managedSecret: source,
          changes: recent.length,
        });
        this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', Reasons.Flapping, message);
        await this.setCondition(ms, 'False', Reasons.Flapping, message);
      }
      return;
    }
    if (this.flapping.delete(source))
      await this.setCondition(ms, 'True', Reasons.Restarted, 'changes are back below the limit: restarts resume');

    let debounceMs = DEFAULT_DEBOUNCE_MS;
    try {
      if (spec.debounce !== undefined) debounceMs = parseDuration(spec.debounce);
    } catch {
      debounceMs = DEFAULT_DEBOUNCE_MS;
    }
    let workloads: Workload[];
    try {
      workloads = await this.targets(ms, secretName);
    } catch (err) {
      this.deps.metrics.rolloutRestarts.inc({ result: 'error' });
      this.deps.log.warn('could not find workloads to restart', { managedSecret: source, error: errorMessage(err) });
      this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', Reasons.RestartFailed, errorMessage(err));
      return;
    }
    for (const w of workloads) this.schedule(w, source, ms, debounceMs);
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

  private schedule(workload: Workload, source: string, ms: ManagedSecret, debounceMs: number): void {
    const key = workloadKey(workload);
    const pending = this.pending.get(key);
    if (pending) {
      // Already scheduled within the window: this change rides along.
      pending.sources.add(source);
      return;
    }
    const timer = setTimeout(() => {
      const entry = this.pending.get(key);
      this.pending.delete(key);
      if (!entry || this.stopped) return;
      const run = this.restart(workload, ms, entry.sources).finally(() => this.running.delete(run));
      this.running.add(run);
    }, debounceMs);
    timer.unref();
    this.pending.set(key, { workload, timer, sources: new Set([source]) });
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

  /** One restart: patch the annotation, then hold the slot until the workload's controller observed it. */
  private async restart(workload: Workload, ms: ManagedSecret, sources: Set<string>): Promise<void> {
    await this.acquire();
    try {
      if (this.stopped) return;
      const at = new Date(this.now()).toISOString();
      const patched = await this.deps.client.request<WorkloadObject>('PATCH', workloadPath(workload), {
        query: { fieldManager: FIELD_MANAGER },
        body: { spec: { template: { metadata: { annotations: { [ANNOTATION_RESTARTED_AT]: at } } } } },
        contentType: 'application/merge-patch+json',
      });
      this.deps.metrics.rolloutRestarts.inc({ result: 'restarted' });
      this.deps.metrics.kubeWrites.inc({ resource: PLURAL[workload.kind], verb: 'patch' });
      const message = `restarted ${workload.kind} ${workload.name}: Secret data changed (${[...sources].join(', ')})`;
      this.deps.log.info('rollout restart', { workload: workloadKey(workload), sources: [...sources] });
      this.deps.events.emit(this.deps.eventTarget(ms), 'Normal', Reasons.Restarted, message);
      await this.observed(workload, patched.metadata.generation);
    } catch (err) {
      this.deps.metrics.rolloutRestarts.inc({ result: 'error' });
      const message = `could not restart ${workload.kind} ${workload.name}: ${errorMessage(err)}`;
      this.deps.log.warn('rollout restart failed', { workload: workloadKey(workload), error: errorMessage(err) });
      this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', Reasons.RestartFailed, message);
    } finally {
      this.release();
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

  /** Drops scheduled restarts; lets running ones finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    for (const resolve of this.slots.splice(0)) resolve();
    await Promise.all([...this.running]);
  }
}
