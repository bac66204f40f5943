// The ManagedSecret reconciler. One pass, top to bottom:
//   1. read   — the spec as the controller understands it, and the Secret as it is;
//   2. decide — whether anything asks for a sync now (pure: `syncNeed`);
//   3. sync   — rotation first if due, then fetch the values, plan the write
//               (pure: `planSecretWrite`), apply it;
//   4. record — the outcome in status.conditions and observedGeneration;
//   5. follow — Events, logs, rollout restarts, the next look in the queue.
// Every failure is a SecretsyncError (src/api/errors.ts) or becomes one: its
// reason goes to the Ready condition, and whether it is transient decides the
// retry (back-off per item) or the wait (a spec change, or the next refresh).
import { DeadlineError, errorInfo, LimitError, NotShardOwnerError, type ErrorInfo } from '../api/errors.js';
import { checkFetchedValues, LimitReasons, type Limits } from '../api/limits.js';
import {
  ANNOTATION_FORCE_SYNC,
  FINALIZER_REVOKE_LEASES,
  Reasons,
  type IssuedStatus,
  type ManagedSecret,
} from '../api/types.js';
import { isNotFound, type KubeClient } from '../kube/client.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { storeLabel, type ServedRegion } from '../providers/provider.js';
import {
  LABEL_MANAGED,
  buildDesired,
  observedDataHmac,
  planSecretWrite,
  targetName,
  type DesiredSecret,
  type SecretObject,
  type SecretPlan,
} from '../secrets/desired.js';
import { compileNamePattern } from '../secrets/pattern.js';
import { renderTemplates } from '../secrets/template.js';
import { validateTarget } from '../secrets/validate.js';
import { withheldTemplateBytes, type ClusterCache } from './caches.js';
import type { CpuTurns } from './cpu-turns.js';
import { getCondition } from './conditions.js';
import type { EventRecorder, EventTarget } from './events.js';
import type { FetchCache } from './fetch-cache.js';
import { parseQueueKey } from './keys.js';
import type { RolloutRestarter } from './rollout.js';
import type { RotationStart, RotationStep } from './rotation-step.js';
import {
  fetchTtl,
  formatDuration,
  nextCronTime,
  nextRefreshDelay,
  parseDuration,
  refreshFloorNote,
  refreshPeriodMs,
  refreshPhase,
} from './schedule.js';
import { SecretWriter, type WriteAction } from './secret-writer.js';
import { deadline } from '../api/abort.js';
import type { StatusWriter } from './status.js';
import type { StoreClients } from './store-clients.js';
import { fetchValues } from './values.js';
import { IssuedCredentials } from './issued.js';
import type { WorkQueue } from './workqueue.js';

export interface ManagedSecretSettings {
  /** Deadline of one sync: reads, decryption, the write and the status. */
  syncTimeoutMs: number;
  /** The admin's floor: no ManagedSecret refreshes more often than this (0: none). */
  minRefreshIntervalMs: number;
  /** Bounds on what a namespace controls (template and Secret sizes, keys, find entries, values). */
  limits: Limits;
}

export interface ManagedSecretDeps {
  client: KubeClient;
  caches: ClusterCache;
  clients: StoreClients;
  fetchCache: FetchCache;
  status: StatusWriter;
  events: EventRecorder;
  rotation: RotationStep;
  restarter: RolloutRestarter;
  queue: WorkQueue;
  log: Logger;
  metrics: Metrics;
  /** Where CPU-heavy steps (patterns, templates, hashing) take turns on the event loop. */
  cpu: CpuTurns;
  /** The key for synced-data HMACs (loaded before the first reconcile). */
  hmacKey(): Buffer;
  eventTarget(ms: ManagedSecret): EventTarget;
  /** Fires when the operator stops. */
  stopSignal: AbortSignal;
  settings: ManagedSecretSettings;
  /**
   * While the event source of the ManagedSecret's store is degraded: the
   * refresh interval it uses at most (the store's events.fallbackRefreshInterval).
   */
  eventsFallbackMs?(ms: ManagedSecret): number | undefined;
  /**
   * The ManagedSecret's store declares an event source (or cannot be resolved):
   * a change made while no operator listened may have been missed, so its values
   * are read when the ManagedSecret is first seen, whatever status says.
   */
  readOnFirstSight?(ms: ManagedSecret): boolean;
  /**
   * Sharded mode: the ManagedSecret's shard (its Secret carries it as a label)
   * and the shard fence's signal, which stops the sync when the shard is lost.
   */
  sharding?: { shardOf(ms: ManagedSecret): number; signalOf(ms: ManagedSecret): AbortSignal };
}

/** The reason of NotShardOwnerError: a sync whose shard this replica lost. */
const NOT_SHARD_OWNER = new NotShardOwnerError(0).reason;

/** What one ManagedSecret's passes remember between them (memory only; a restart starts afresh). */
interface SyncState {
  /** When values were last read successfully: the anchor of the refresh schedule. */
  lastCheck?: number;
  /** The force-sync annotation value last acted on. */
  forceSeen?: string;
  /** The last pass failed, and how. */
  failure?: ErrorInfo;
  /** A write met a 409: the cache is behind, ask the server for the target next time. */
  probeTarget?: boolean;
  /** The generation whose spec passed `readSpec` (patterns compiled, target checked): not checked again. */
  checkedGeneration?: number;
  /** The target is a Secret without our label (one ESO writes): the label-filtered cache never holds it. */
  unlabelledTarget?: boolean;
  /** Store changes announced (storeChanged: a store edit, a change event), counted. */
  changes?: number;
  /** `changes` when the last successful sync began: while they differ, a change waits to be read. */
  changesRead?: number;
  /** The refresh period its last pass read from the spec (floor applied; 0: none); undefined after a spec error. */
  intervalMs?: number;
  /** The first pass has set this state up (a store change may have made it earlier). */
  seen?: boolean;
  /** `lastCheck` came from status (first sight after a start or a shard move), not from a read of ours. */
  checkFromStatus?: boolean;
  /** The last pass's status write failed: the next pass syncs again to record it (back-off in the queue). */
  unrecorded?: boolean;
}

/** What the spec says, once checked: everything the controller can find wrong without a backend. */
interface SpecView {
  intervalMs: number;
}

/** The outcome of the sync stage. */
type SyncOutcome =
  | {
      ok: true;
      action: 'none' | WriteAction;
      /** Why nothing was written to a Secret that is not ours (see planSecretWrite). */
      note?: string;
      desired: DesiredSecret;
      storeName: string;
      served: ServedRegion | null;
      /** status.issued after this sync (null: clear it; undefined: leave it). */
      issued: IssuedStatus[] | null | undefined;
    }
  | { ok: false; error: ErrorInfo }
  /** The cache was behind the server (409): look again at once, reading from the server. */
  | { ok: false; lookAgain: true };

/** Why a pass syncs, or undefined when nothing asks for it. Pure. */
export function syncNeed(input: {
  forced: boolean;
  generationChanged: boolean;
  drifted: boolean;
  retrying: boolean;
  due: boolean;
  /** An issued certificate or lease has reached its renewal point. */
  renewalDue?: boolean;
}): 'forced' | 'spec' | 'drift' | 'retry' | 'renew' | 'refresh' | undefined {
  if (input.forced) return 'forced';
  if (input.generationChanged) return 'spec';
  if (input.drifted) return 'drift';
  if (input.retrying) return 'retry';
  if (input.renewalDue) return 'renew';
  if (input.due) return 'refresh';
  return undefined;
}

/**
 * Checks what the controller can check of a spec without a backend; throws
 * SpecError. The checks depend on the spec alone (memoised per generation);
 * the refresh period of a cron schedule also depends on the time.
 */
function readSpec(ms: ManagedSecret, now: number, floorMs: number, limits: Limits, checked: boolean): SpecView {
  if (!checked) checkSpec(ms, limits);
  const period = refreshPeriodMs(ms.spec, now);
  return { intervalMs: period === 0 ? 0 : Math.max(period, floorMs) };
}

function checkSpec(ms: ManagedSecret, limits: Limits): void {
  const withheld = withheldTemplateBytes(ms);
  if (withheld !== undefined)
    throw new LimitError(
      LimitReasons.TemplateTooLarge,
      `target.template.data holds ${withheld} bytes of templates, more than the ${limits.maxTemplateBytes} allowed (--max-template-bytes)`,
      'terminal',
    );
  parseDuration(ms.spec.refreshInterval ?? '1h');
  // RE2 semantics, linear time: a pattern RE2 refuses is the spec's mistake, reported before any backend call.
  for (const item of ms.spec.dataFrom ?? [])
    if (item.find?.nameRegexp !== undefined) compileNamePattern(item.find.nameRegexp);
  // Types and annotations the cluster acts on, for objects admitted before the CRD refused them.
  validateTarget(ms);
}

const nameOf = (ms: ManagedSecret) => `${ms.metadata.namespace}/${ms.metadata.name}`;

export class ManagedSecretReconciler {
  private readonly state = new Map<string, SyncState>();
  private readonly writer: SecretWriter;
  private readonly issued: IssuedCredentials;

  constructor(private readonly deps: ManagedSecretDeps) {
    this.issued = new IssuedCredentials({
      client: deps.client,
      events: deps.events,
      eventTarget: (ms) => deps.eventTarget(ms),
      log: deps.log,
    });
    this.writer = new SecretWriter(deps.client, deps.metrics, (secret) =>
      deps.cpu.run(() => Buffer.from(JSON.stringify(secret))),
    );
  }

  /** The ManagedSecret is gone: forget it everywhere. */
  forget(key: string, ms?: ManagedSecret): void {
    this.deps.queue.cancel(key);
    this.state.delete(key);
    if (ms) {
      this.deps.restarter.forget(ms);
      this.deps.metrics.lastSuccess.remove({ namespace: ms.metadata.namespace ?? '', name: ms.metadata.name });
      this.issued.forget(ms);
    }
  }

  /** Its store changed, so its values may have: the next pass reads them again. */
  storeChanged(key: string): void {
    // A ManagedSecret not looked at yet gets its state now: the change must not be lost to what status vouches for.
    let state = this.state.get(key);
    if (!state) this.state.set(key, (state = {}));
    state.lastCheck = undefined;
    state.checkFromStatus = false;
    // Counted, not just flagged: a sync already reading when the change came must not count as having read it.
    state.changes = (state.changes ?? 0) + 1;
    this.deps.queue.add(key);
  }

  /**
   * When each ManagedSecret last read its values, and its refresh period (for
   * the freshness gauges): both kept by its last pass, so the gauges' walk over
   * every ManagedSecret parses nothing and looks nothing up.
   */
  *checks(): Iterable<{ lastCheck: number; intervalMs: number }> {
    for (const state of this.state.values())
      if (state.lastCheck !== undefined && state.intervalMs !== undefined)
        yield { lastCheck: state.lastCheck, intervalMs: state.intervalMs };
  }

  async reconcile(key: string): Promise<void> {
    const ms = this.deps.caches.managedSecrets.get(parseQueueKey(key).cacheKey);
    const revoking = ms?.metadata.deletionTimestamp && ms.metadata.finalizers?.includes(FINALIZER_REVOKE_LEASES);
    if (!ms || (ms.metadata.deletionTimestamp && !revoking)) {
      this.forget(key, ms);
      return;
    }
    const limit = deadline(this.deps.settings.syncTimeoutMs, this.deps.stopSignal, this.deps.sharding?.signalOf(ms));
    try {
      if (revoking) await this.finalize(key, ms, limit.signal);
      else await this.pass(key, ms, limit.signal);
    } finally {
      limit.dispose();
    }
  }

  /** A deleted ManagedSecret holding the revoke-leases finalizer: revoke, release, or look again after a back-off. */
  private async finalize(key: string, ms: ManagedSecret, signal: AbortSignal): Promise<void> {
    try {
      const result = await this.issued.finalize(
        ms,
        async () => {
          const resolved = this.deps.caches.resolveStore(ms);
          if ('reason' in resolved) return resolved;
          const client = await this.deps.clients.get(resolved.storeKey, resolved.store, { signal });
          return { store: resolved.store, client };
        },
        { signal, tenant: ms.metadata.namespace ?? '' },
      );
      if (result === 'retry') this.deps.queue.addRateLimited(key);
      else this.deps.queue.forget(key);
    } catch (err) {
      this.deps.log.warn('could not release the revoke-leases finalizer', {
        managedSecret: nameOf(ms),
        error: errorMessage(err),
      });
      this.deps.queue.addRateLimited(key);
    }
  }

  private async pass(key: string, ms: ManagedSecret, signal: AbortSignal): Promise<void> {
    const state = this.stateOf(key, ms);
    const now = Date.now();

    // 1. Read: the spec (a spec error waits for a spec change), then the Secret as it is.
    let spec: SpecView;
    try {
      const { minRefreshIntervalMs, limits } = this.deps.settings;
      if (state.checkedGeneration !== undefined && state.checkedGeneration === ms.metadata.generation)
        spec = readSpec(ms, now, minRefreshIntervalMs, limits, true);
      else {
        // Compiling a pattern can take tens of milliseconds: in its turn (see cpu-turns.ts), once per generation.
        spec = await this.deps.cpu.run(() => readSpec(ms, now, minRefreshIntervalMs, limits, false));
        state.checkedGeneration = ms.metadata.generation;
      }
    } catch (err) {
      // An invalid interval is reported on the object; it has no freshness to measure.
      state.intervalMs = undefined;
      await this.recordFailure(ms, key, state, errorInfo(err, Reasons.InvalidSpec), signal, { specError: true });
      return;
    }
    state.intervalMs = spec.intervalMs;
    let existing: SecretObject | undefined;
    try {
      existing = await this.readTarget(ms, state, signal);
    } catch (err) {
      await this.recordFailure(ms, key, state, this.classify(err, signal, Reasons.WriteFailed), signal);
      return;
    }

    // 2. Decide.
    const forceValue = ms.metadata.annotations?.[ANNOTATION_FORCE_SYNC];
    const forced = forceValue !== undefined && forceValue !== state.forceSeen;
    const delay = state.lastCheck === undefined ? 0 : this.refreshDelay(ms, state.lastCheck, now);
    const generationChanged = ms.status?.observedGeneration !== ms.metadata.generation;
    const drifted =
      (ms.spec.target?.creationPolicy ?? 'Owner') !== 'None' &&
      this.actualHmac(ms, existing) !== ms.status?.syncedVersion;
    const renewal = this.issued.nextRenewal(ms);
    const need = syncNeed({
      // After a terminal failure (IssuePathNotAllowed) only a change helps: a past renewal point must not loop.
      renewalDue: renewal !== undefined && renewal <= now && state.failure?.retry !== 'terminal',
      forced,
      generationChanged,
      drifted,
      retrying: state.failure?.retry === 'transient' || state.unrecorded === true,
      due:
        state.lastCheck === undefined ||
        (delay !== undefined && delay <= 0) ||
        (state.changes ?? 0) !== (state.changesRead ?? 0),
    });
    // A pending rollout restart recorded by an earlier pass (maybe another replica's, before a shard move or a
    // restart) is carried out by whoever holds the ManagedSecret now: scheduled at its notBefore, once.
    if (ms.status?.rolloutRestart || ms.spec.rolloutRestart) this.deps.restarter.resume(ms, targetName(ms));
    const rotation = ms.spec.rotation
      ? await this.deps.rotation.begin(ms, now, signal)
      : ({ kind: 'none' } as RotationStart);
    const firstSight = state.checkFromStatus === true;
    state.checkFromStatus = false;
    if (need === undefined && rotation.kind !== 'written') {
      if (firstSight) this.deps.metrics.verifiedFromStatus.inc();
      this.scheduleNext(key, ms, state, rotation);
      return;
    }

    // 3. Sync: fresh values when forced or rotating; otherwise reads shared within the cycle are fine.
    const end = this.deps.metrics.syncDuration.startTimer();
    const changesAtStart = state.changes ?? 0;
    const ttl = forced || rotation.kind === 'written' ? 0 : this.fetchTtl(ms, state, spec, need, now);
    // Issued values may be kept from the Secret only while it holds what we wrote (not a hand edit).
    const trusted = existing !== undefined && this.actualHmac(ms, existing) === ms.status?.syncedVersion;
    const outcome = await this.sync(ms, state, existing, trusted, ttl, signal);
    if (forceValue !== undefined) state.forceSeen = forceValue;

    // 4. Record, 5. follow.
    if ('lookAgain' in outcome) {
      state.probeTarget = true;
      this.deps.queue.addAfter(key, 200);
    } else if (!outcome.ok) {
      await this.recordFailure(ms, key, state, outcome.error, signal);
    } else {
      state.changesRead = changesAtStart;
      await this.recordSuccess(ms, key, state, outcome, now, signal);
    }
    if (rotation.kind === 'written') {
      const finished = await this.deps.rotation.finish(ms, rotation.active, outcome.ok);
      if (!finished) this.deps.queue.addRateLimited(key);
    }
    // A failed sync already backs off; a rotation that failed beside a good sync backs off on its own.
    if (rotation.kind === 'failed' && rotation.transient && outcome.ok)
      this.deps.queue.addRateLimited(key, retryAfter(rotation.retryAfterMs));
    end();
  }

  private stateOf(key: string, ms: ManagedSecret): SyncState {
    let state = this.state.get(key);
    if (!state) this.state.set(key, (state = {}));
    if (!state.seen) {
      state.seen = true;
      // After a restart the last success is what status recorded, until the next one.
      const recorded = ms.status?.lastSuccessfulSyncTime;
      if (recorded)
        this.deps.metrics.lastSuccess.set(
          { namespace: ms.metadata.namespace ?? '', name: ms.metadata.name },
          Date.parse(recorded) / 1000,
        );
      const anchor = state.changes === undefined ? this.checkFromStatus(ms) : undefined;
      if (anchor !== undefined) {
        state.lastCheck = anchor;
        state.checkFromStatus = true;
      }
    }
    return state;
  }

  /**
   * When a ManagedSecret first seen (after a start, or on taking over its
   * shard) last read its values, as far as status can vouch for it: the
   * refresh schedule resumes from there instead of reading every backend again,
   * which is what made a restart cost a read per ManagedSecret. Status vouches
   * only for a sync of this generation that left it Ready; the pass still
   * compares the Secret with `syncedVersion` (drift reads again), and a store
   * with an event source reads at once (a change while no one listened). The
   * time is `lastSuccessfulSyncTime`, which is never later than the last read
   * (it is written at least hourly), so a refresh is never postponed by it.
   */
  private checkFromStatus(ms: ManagedSecret): number | undefined {
    const status = ms.status;
    if (!status?.syncedVersion || !status.lastSuccessfulSyncTime) return undefined;
    if (status.observedGeneration !== ms.metadata.generation) return undefined;
    const ready = getCondition(status.conditions, 'Ready');
    if (ready?.status !== 'True' || (ready.observedGeneration ?? status.observedGeneration) !== ms.metadata.generation)
      return undefined;
    if (this.deps.readOnFirstSight?.(ms) !== false) return undefined;
    const recorded = Date.parse(status.lastSuccessfulSyncTime);
    if (!Number.isFinite(recorded)) return undefined;
    // A clock ahead of ours must not push the next refresh out.
    return Math.min(recorded, Date.now());
  }

  /**
   * How old a shared read may be for this pass. A scheduled refresh takes only
   * reads made since its slot fired (other ManagedSecrets on the same schedule
   * share them), never one from before: a sync that ran shortly before the slot
   * would otherwise serve its values again at the slot.
   */
  private fetchTtl(ms: ManagedSecret, state: SyncState, spec: SpecView, need: string | undefined, now: number): number {
    const fallback = this.deps.eventsFallbackMs?.(ms);
    // Polling at the fallback interval must not be served values older than that interval.
    const ttl =
      fallback !== undefined && spec.intervalMs > 0
        ? Math.min(fetchTtl(spec.intervalMs), fetchTtl(fallback))
        : fetchTtl(spec.intervalMs);
    if (need !== 'refresh' || !ms.spec.refreshSchedule || state.lastCheck === undefined) return ttl;
    const slot = nextCronTime(
      ms.spec.refreshSchedule,
      new Date(state.lastCheck + this.deps.settings.minRefreshIntervalMs),
    ).getTime();
    return Math.max(0, Math.min(ttl, now - slot));
  }

  private refreshDelay(ms: ManagedSecret, lastCheck: number, now: number): number | undefined {
    const phase = refreshPhase(ms.metadata.uid ?? nameOf(ms));
    const floor = this.deps.settings.minRefreshIntervalMs;
    const delay = nextRefreshDelay(ms.spec, lastCheck, now, phase, floor);
    // Events keep the Secret fresh; while they are degraded the store's fallback interval is the safety net.
    const fallback = delay === undefined ? undefined : this.deps.eventsFallbackMs?.(ms);
    if (fallback === undefined || delay === undefined) return delay;
    const fallbackDelay = nextRefreshDelay({ refreshInterval: formatDuration(fallback) }, lastCheck, now, phase, floor);
    return fallbackDelay === undefined ? delay : Math.min(delay, fallbackDelay);
  }

  /**
   * A failure that came with the sync's signal fired is the signal's failure,
   * whatever the library threw: the shard's loss when its fence fired (the
   * reason `deadline` carries over, a NotShardOwnerError, dropped quietly by
   * recordFailure), else the sync deadline.
   */
  private classify(err: unknown, signal: AbortSignal, fallback: string): ErrorInfo {
    if (signal.aborted && !this.deps.stopSignal.aborted && errorInfo(err, fallback).reason === fallback) {
      const reason: unknown = signal.reason;
      if (reason instanceof NotShardOwnerError) return errorInfo(reason, fallback);
      return errorInfo(
        new DeadlineError(`the sync did not finish within ${this.deps.settings.syncTimeoutMs / 1000}s`),
        fallback,
      );
    }
    return errorInfo(err, fallback);
  }

  private async readTarget(
    ms: ManagedSecret,
    state: SyncState,
    signal: AbortSignal,
  ): Promise<SecretObject | undefined> {
    const ns = ms.metadata.namespace ?? '';
    const name = targetName(ms);
    // After a 409 the cache is behind the server (or does not know the Secret): ask the server.
    if (!state.probeTarget && !state.unlabelledTarget) {
      const cached = this.deps.caches.secrets.get(`${ns}/${name}`);
      if (cached) return cached;
      // Every Secret an Owner ManagedSecret wrote carries our label, so the label-filtered cache
      // holds it: a miss means there is none, and a create finds out (AlreadyExists) when someone
      // else's is in the way. This saves a GET per ManagedSecret on a cold start.
      if ((ms.spec.target?.creationPolicy ?? 'Owner') === 'Owner') return undefined;
    }
    // Not labelled by us (yet): a Secret we are to merge into, or someone else's.
    try {
      const found = await this.deps.client.request<SecretObject>('GET', `/api/v1/namespaces/${ns}/secrets/${name}`, {
        signal,
      });
      state.probeTarget = false;
      return found;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      state.probeTarget = false;
      return undefined;
    }
  }

  /** The HMAC of what the Secret holds now, over the keys we manage (keys others added are not drift). */
  private actualHmac(ms: ManagedSecret, secret: SecretObject | undefined): string | undefined {
    return secret ? observedDataHmac(ms, secret, this.deps.hmacKey()) : undefined;
  }

  /** Fetch, plan, apply. Never throws: every failure is an outcome. */
  private async sync(
    ms: ManagedSecret,
    state: SyncState,
    existing: SecretObject | undefined,
    existingTrusted: boolean,
    ttlMs: number,
    signal: AbortSignal,
  ): Promise<SyncOutcome> {
    const resolved = this.deps.caches.resolveStore(ms);
    // The store may appear, or admit the namespace: both arrive as watch events, and are retried too.
    if ('reason' in resolved) return { ok: false, error: failure(resolved.reason, resolved.message) };
    const { store, storeKey } = resolved;
    const storeName = storeLabel(store);

    // Fetch.
    let values: Record<string, string>;
    let served: ServedRegion | null;
    let issued: IssuedStatus[] | null | undefined;
    try {
      const client = await this.deps.clients.get(storeKey, store, { signal });
      const { limits } = this.deps.settings;
      const callOpts = { signal, tenant: ms.metadata.namespace ?? '' };
      // Certificates and dynamic secrets: kept, renewed or issued (issued.ts); none: clear what status recorded.
      const issuedNow = await this.issued.prepare(ms, store, client, existing, existingTrusted, callOpts);
      issued = issuedNow ? issuedNow.entries : ms.status?.issued ? null : undefined;
      const fetched = await fetchValues(
        ms,
        client,
        this.deps.fetchCache,
        storeKey,
        ttlMs,
        existing,
        limits,
        callOpts,
        issuedNow?.values,
      );
      served = client.servedRegion?.() ?? null;
      if (fetched.missing.length > 0 && (ms.spec.target?.deletionPolicy ?? 'Retain') === 'Retain')
        return {
          ok: false,
          error: failure(
            Reasons.KeyNotFound,
            `${storeName}: key ${fetched.missing.join(', ')} not found; the Secret is left as it was`,
          ),
        };
      values = fetched.values;
      const template = ms.spec.target?.template;
      if (template) {
        const fetchedValues = values;
        values = await this.deps.cpu.run(() => {
          const rendered = renderTemplates(template.data, fetchedValues, limits);
          const all = template.mergePolicy === 'Merge' ? { ...fetchedValues, ...rendered } : rendered;
          checkFetchedValues(all, limits, `the rendered data of ManagedSecret ${nameOf(ms)}`);
          return all;
        });
      }
    } catch (err) {
      this.deps.clients.afterError(storeKey, err);
      const info = this.classify(err, signal, Reasons.ProviderError);
      // Seen from a ManagedSecret, a store whose configuration is unusable is a store that is not ready.
      const reason = info.reason === Reasons.InvalidProviderConfig ? Reasons.StoreNotReady : info.reason;
      return { ok: false, error: { ...info, reason, message: `${storeName}: ${info.message}` } };
    }

    // Plan.
    const hmacKey = this.deps.hmacKey();
    // Base64 and an HMAC over up to a MiB of data: in its turn.
    const { desired, plan } = await this.deps.cpu.run(() => {
      const built = buildDesired(ms, values, hmacKey, this.deps.sharding?.shardOf(ms));
      return { desired: built, plan: planSecretWrite(ms, built, existing, hmacKey) as SecretPlan };
    });
    // A Secret ESO writes is not in the label-filtered cache: read it from the server on later passes too.
    state.unlabelledTarget = existing !== undefined && existing.metadata.labels?.[LABEL_MANAGED] !== 'true';
    if (plan.action === 'conflict' || plan.action === 'missing')
      return {
        ok: false,
        error: failure(plan.action === 'conflict' ? plan.reason : Reasons.TargetMissing, plan.message),
      };

    // Apply.
    if (plan.action !== 'none') {
      try {
        await this.writer.apply(plan, existing, signal);
      } catch (err) {
        if ((err as { status?: number }).status === 409) return { ok: false, lookAgain: true };
        return { ok: false, error: this.classify(err, signal, Reasons.WriteFailed) };
      }
    }
    const note = plan.action === 'none' ? plan.note : undefined;
    return {
      ok: true,
      action: plan.action,
      ...(note !== undefined ? { note } : {}),
      desired,
      storeName,
      served,
      issued,
    };
  }

  private async recordSuccess(
    ms: ManagedSecret,
    key: string,
    state: SyncState,
    outcome: Extract<SyncOutcome, { ok: true }>,
    now: number,
    signal: AbortSignal,
  ): Promise<void> {
    const { action, desired, storeName, served } = outcome;
    const wrote = action !== 'none';
    const previousHmac = ms.status?.syncedVersion;
    const secretRef = `Secret ${desired.namespace}/${desired.name}`;
    const keyCount = Object.keys(desired.data).length;
    const floorNote = refreshFloorNote(ms.spec, this.deps.settings.minRefreshIntervalMs, now);
    const message =
      (action === 'none' && (ms.spec.target?.creationPolicy ?? 'Owner') === 'None'
        ? `values fetched from ${storeName} (${keyCount} keys); creationPolicy None writes no Secret`
        : outcome.note !== undefined
          ? `values fetched from ${storeName} (${keyCount} keys); ${outcome.note}`
          : `${secretRef} in sync with ${storeName} (${keyCount} keys)`) + (floorNote ? `; ${floorNote}` : '');
    state.lastCheck = now;
    state.failure = undefined;
    // A real data change asks for rollout restarts: the Secret now holds a version other than the one status
    // recorded (not a create, not a no-op, not a drift repair). That is the record, not this pass's write: a pass
    // whose Secret write landed and whose status patch did not (a lost shard, a crash, a refused patch) leaves the
    // next pass with nothing to write, and the restart would be lost. The intent goes into the same status patch
    // as the sync (durable, for whoever holds the ManagedSecret when due); a restart already sent for the version
    // is skipped by the workload's restarted-for annotation.
    const secretHoldsDesired = wrote || (ms.spec.target?.creationPolicy ?? 'Owner') !== 'None';
    const restart =
      secretHoldsDesired && ms.spec.rolloutRestart && previousHmac !== undefined && previousHmac !== desired.hmac
        ? this.deps.restarter.planChange(ms, desired.hmac)
        : undefined;
    const recorded = await this.deps.status.recordSync(
      ms,
      {
        ready: { type: 'Ready', status: 'True', reason: Reasons.Synced, message },
        syncedVersion: desired.hmac,
        wrote,
        succeededAt: now,
        served,
        issued: outcome.issued,
        ...(restart?.intent ? { rolloutRestart: restart.intent } : {}),
      },
      signal,
    );
    // A record that failed is looked at again with back-off (the pass finds the Secret ahead of status and
    // records it); the back-off resets only once the record is in.
    state.unrecorded = recorded === 'failed';
    if (state.unrecorded) this.deps.queue.addRateLimited(key);
    else this.deps.queue.forget(key);
    this.deps.metrics.syncs.inc({ result: wrote ? 'synced' : 'unchanged', reason: Reasons.Synced });
    this.deps.metrics.lastSuccess.set({ namespace: ms.metadata.namespace ?? '', name: ms.metadata.name }, now / 1000);
    // The store's status names its active region (and endpoint): look at the store now rather than at its next check.
    const resolved = this.deps.caches.resolveStore(ms);
    if (
      served !== null &&
      'store' in resolved &&
      (served.region !== resolved.store.status?.activeRegion ||
        served.endpoint !== resolved.store.status?.activeEndpoint)
    )
      this.deps.queue.add(resolved.storeKey);
    if (restart)
      void this.deps.restarter.follow(ms, desired.name, restart).catch((err: unknown) =>
        this.deps.log.warn('rollout restart scheduling failed', {
          managedSecret: nameOf(ms),
          error: errorMessage(err),
        }),
      );
    if (wrote) {
      this.deps.events.emit(
        this.deps.eventTarget(ms),
        'Normal',
        Reasons.Synced,
        `${secretRef} ${action === 'create' ? 'created' : action === 'recreate' ? 'recreated' : 'updated'} (${keyCount} keys)`,
      );
      this.deps.log.info('synced', {
        managedSecret: nameOf(ms),
        store: storeName,
        secret: secretRef,
        action,
        keys: keyCount,
      });
    } else if (recorded === 'written') {
      this.deps.log.info('in sync', { managedSecret: nameOf(ms), store: storeName, secret: secretRef });
    }
    this.scheduleNext(key, ms, state);
  }

  /**
   * Records a failure: Ready=False with the error's reason, a Warning Event, and
   * the next look: transient errors back off per item (at least as long as the
   * backend asked); terminal ones wait for the next refresh, and spec errors for
   * a spec change (the watch brings that).
   */
  private async recordFailure(
    ms: ManagedSecret,
    key: string,
    state: SyncState,
    failure: ErrorInfo,
    signal: AbortSignal,
    opts: { specError?: boolean } = {},
  ): Promise<void> {
    if (failure.reason === NOT_SHARD_OWNER) {
      // The shard went while this sync ran: nothing to record (this replica may not write it), no retry here;
      // the replica that holds the shard now syncs it.
      this.deps.log.debug('shard lost during a sync; left to its new owner', { managedSecret: nameOf(ms) });
      this.deps.queue.cancel(key);
      return;
    }
    state.failure = failure;
    this.deps.metrics.syncs.inc({ result: 'error', reason: failure.reason });
    this.deps.log.warn('sync failed', { managedSecret: nameOf(ms), reason: failure.reason, message: failure.message });
    const recorded = await this.deps.status.recordSync(
      ms,
      {
        ready: { type: 'Ready', status: 'False', reason: failure.reason, message: failure.message },
        syncedVersion: ms.status?.syncedVersion,
        wrote: false,
        succeededAt: undefined,
      },
      signal,
    );
    this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', failure.reason, failure.message);
    if (failure.retry === 'transient') this.deps.queue.addRateLimited(key, retryAfter(failure.retryAfterMs));
    else if (!opts.specError) this.scheduleNext(key, ms, state);
    // A terminal failure whose record failed: the condition must still say so (a spec error included).
    state.unrecorded = recorded === 'failed';
    if (state.unrecorded && failure.retry !== 'transient') this.deps.queue.addRateLimited(key);
  }

  /** The next refresh (and rotation) of this ManagedSecret, in the queue. */
  private scheduleNext(key: string, ms: ManagedSecret, state: SyncState, rotation?: RotationStart): void {
    const now = Date.now();
    let delay: number | undefined;
    try {
      delay = this.refreshDelay(ms, state.lastCheck ?? now, now);
    } catch {
      delay = undefined;
    }
    if (delay !== undefined) this.deps.queue.addAfter(key, Math.max(delay, 1_000));
    // The earliest renewal point of an issued certificate or lease.
    const renewal = state.failure ? undefined : this.issued.nextRenewal(ms);
    if (renewal !== undefined) this.deps.queue.addAfter(key, Math.max(renewal - now, 1_000));
    if (rotation?.kind === 'failed') {
      if (rotation.transient) this.deps.queue.addRateLimited(key, retryAfter(rotation.retryAfterMs));
      return;
    }
    const rotationLook = this.deps.rotation.nextLookMs(ms, now);
    if (rotationLook !== undefined) this.deps.queue.addAfter(key, rotationLook);
  }
}

/** The queue's back-off options for a server's or backend's Retry-After. */
const retryAfter = (ms: number | undefined) => (ms !== undefined ? { minDelayMs: ms } : {});

/** A failure the reconciler finds itself (not thrown by anyone): retried with back-off unless said otherwise. */
function failure(reason: string, message: string, retry: ErrorInfo['retry'] = 'transient'): ErrorInfo {
  return { reason, retry, message, retryAfterMs: undefined, clientUnusable: false };
}
