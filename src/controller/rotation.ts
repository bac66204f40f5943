// Rotation: new values generated on a schedule and written to the store, then
// synced into the Secret, exactly once per due time.
//
// The protocol, all through the ManagedSecret's status:
//   1. due (schedule, interval, first time, or secretsync.io/rotate-now):
//      record rotationInProgress {dueTime, requestToken, startedAt} (patch) —
//      nothing is written to the store unless this succeeded;
//   2. generate, putValue with that token;
//   3. the controller syncs the Secret (fresh read);
//   4. record lastRotationTime, nextRotationTime, rotationVersion, Rotated=True,
//      and clear rotationInProgress.
// A crash anywhere after 1 leaves the record: the next reconcile (this replica
// or the next leader) finishes that same rotation with the same token, which
// the store turns into "already written". Missed due times collapse into one
// rotation, because the next due time is computed from when the last one
// finished, not from the missed ones.
import { randomUUID } from 'node:crypto';
import { SpecError } from '../api/errors.js';
import {
  ANNOTATION_ROTATE_NOW,
  Reasons,
  type Condition,
  type ManagedSecret,
  type ManagedSecretStatus,
  type RotationInProgress,
  type RotationSpec,
} from '../api/types.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { WriteFence } from '../kube/client.js';
import type { Metrics } from '../observability/metrics.js';
import type { ProviderClient } from '../providers/provider.js';
import { generate, isKeyPairGenerator, validateGenerator } from '../secrets/generators.js';
import { setCondition } from './conditions.js';
import type { EventRecorder, EventTarget } from './events.js';
import { nextCronTime, parseDuration } from './schedule.js';
import { deadline } from '../api/abort.js';

export const DEFAULT_ROTATION_KEEP_VERSIONS = 5;
/** Set (to 1) only by tests: the process kills itself right after the store write, before the Secret is updated. */
export const CRASH_AFTER_WRITE_ENV = 'SECRETSYNC_TEST_CRASH_AFTER_ROTATION_WRITE';

const iso = (d: Date | number): string => new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The rotation spec is unusable; says why, never a value. */
export class RotationSpecError extends SpecError {
  constructor(message: string) {
    super(message);
    this.name = 'RotationSpecError';
  }
}

/** Checks the rotation spec the schema cannot (time zone, cron parse, generator parameters). */
export function validateRotation(spec: RotationSpec): void {
  if ((spec.schedule === undefined) === (spec.interval === undefined))
    throw new RotationSpecError('rotation must set exactly one of schedule or interval');
  try {
    if (spec.interval !== undefined && parseDuration(spec.interval) < 1_000)
      throw new Error('rotation.interval must be at least 1s');
    if (spec.schedule !== undefined) nextCronTime(spec.schedule, new Date(), spec.timeZone ?? 'UTC');
    if (spec.timeZone !== undefined) new Intl.DateTimeFormat('en', { timeZone: spec.timeZone });
    validateGenerator(spec.generator);
  } catch (err) {
    throw new RotationSpecError(errorMessage(err).replace('refreshSchedule', 'rotation.schedule'));
  }
  if (isKeyPairGenerator(spec.generator) && spec.remoteRef.property !== undefined)
    throw new RotationSpecError(
      'key pair generators write privateKey and publicKey: remove rotation.remoteRef.property',
    );
}

/** The first due time after `from`. */
export function nextRotationAfter(spec: RotationSpec, from: Date): Date {
  if (spec.interval !== undefined) return new Date(from.getTime() + parseDuration(spec.interval));
  return nextCronTime(spec.schedule ?? '@daily', from, spec.timeZone ?? 'UTC');
}

export type RotationTrigger = 'resume' | 'manual' | 'initial' | 'schedule';

export interface RotationDecision {
  due: boolean;
  trigger?: RotationTrigger;
  /** When the current due time is (or was); undefined when not due. */
  dueTime?: Date;
  /** When the next rotation falls due if this one is not (for scheduling). */
  next?: Date;
}

/**
 * Whether a rotation is due now. An unfinished rotation is always resumed; a
 * rotate-now annotation not yet acted on rotates at once; a ManagedSecret that
 * never rotated rotates now (the first generated value); otherwise the next
 * due time after the last rotation.
 */
export function rotationDecision(ms: ManagedSecret, now: Date): RotationDecision {
  const spec = ms.spec.rotation;
  if (!spec) return { due: false };
  const status = ms.status ?? {};
  if (status.rotationInProgress)
    return { due: true, trigger: 'resume', dueTime: new Date(status.rotationInProgress.dueTime) };
  const manual = ms.metadata.annotations?.[ANNOTATION_ROTATE_NOW];
  if (manual !== undefined && manual !== '' && manual !== status.handledRotateNow)
    return { due: true, trigger: 'manual', dueTime: now };
  if (!status.lastRotationTime) return { due: true, trigger: 'initial', dueTime: now };
  const next = nextRotationAfter(spec, new Date(status.lastRotationTime));
  return next.getTime() <= now.getTime() ? { due: true, trigger: 'schedule', dueTime: next } : { due: false, next };
}

/** Milliseconds until the next rotation is due (negative when overdue), or undefined without rotation. */
export function rotationDueInMs(ms: ManagedSecret, now: number): number | undefined {
  if (!ms.spec.rotation) return undefined;
  const next = ms.status?.nextRotationTime;
  if (!next) return ms.status?.lastRotationTime ? undefined : 0;
  return new Date(next).getTime() - now;
}

export interface RotationDeps {
  log: Logger;
  metrics: Metrics;
  events: EventRecorder;
  eventTarget(ms: ManagedSecret): EventTarget;
  /** Merge-patches the status; resolves with the status the server now holds. */
  patchStatus(ms: ManagedSecret, status: Record<string, unknown>): Promise<ManagedSecretStatus | undefined>;
  /** The leader's write fence: the store write is a write too (see LeaderElector). */
  fence?: WriteFence;
  /** Sharded mode: the fence of the ManagedSecret's shard, checked as well as `fence`. */
  shardFence?(ms: ManagedSecret): WriteFence | undefined;
}

/** A rotation under way: recorded in status, maybe written to the store. */
export interface ActiveRotation {
  record: RotationInProgress;
  trigger: RotationTrigger;
  manual?: string;
  version?: string;
}

/** One ManagedSecret's rotation steps; the controller calls them in order and syncs between write and finish. */
export class Rotator {
  constructor(private readonly deps: RotationDeps) {}

  /**
   * Step 1: when due, the in-progress record (an existing one is reused as is).
   * Undefined when nothing is due, or when the record could not be written (the
   * caller retries later; nothing was written to the store).
   */
  async begin(ms: ManagedSecret, now: Date): Promise<ActiveRotation | undefined> {
    const spec = ms.spec.rotation;
    if (!spec) return undefined;
    const decision = rotationDecision(ms, now);
    if (!decision.due || !decision.trigger || !decision.dueTime) return undefined;
    const manualValue = ms.metadata.annotations?.[ANNOTATION_ROTATE_NOW];
    const manual = decision.trigger === 'manual' ? manualValue : undefined;
    const existing = ms.status?.rotationInProgress;
    if (existing) return { record: existing, trigger: 'resume', manual: manualValue };
    const record: RotationInProgress = {
      dueTime: iso(decision.dueTime),
      requestToken: randomUUID(),
      startedAt: iso(now),
    };
    const patch: Record<string, unknown> = { rotationInProgress: record };
    // The request is taken as soon as it is recorded: a crash after this finishes it, never repeats it.
    if (manual !== undefined) patch.handledRotateNow = manual;
    const updated = await this.deps.patchStatus(ms, patch);
    if (!updated?.rotationInProgress) return undefined;
    ms.status = updated;
    this.deps.log.info('rotation started', {
      managedSecret: `${ms.metadata.namespace}/${ms.metadata.name}`,
      trigger: decision.trigger,
      dueTime: record.dueTime,
    });
    return { record, trigger: decision.trigger, manual };
  }

  /**
   * Step 2: generate and write with the record's token. Throws on failure (the
   * record stays: the next attempt uses the same token). The value is never
   * logged, and never kept beyond this call.
   */
  async write(
    ms: ManagedSecret,
    client: ProviderClient,
    active: ActiveRotation,
    storeName: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const spec = ms.spec.rotation as RotationSpec;
    validateRotation(spec);
    const putValue = client.putValue?.bind(client);
    if (!putValue)
      throw new RotationSpecError(`${storeName} cannot be written to: its provider does not support rotation`);
    const generated = generate(spec.generator);
    const value = generated.kind === 'value' ? generated.value : generated.properties;
    // Checked here, not only on the status patch before: a leader paused after that patch resumes right here,
    // and its token may be stale (the new leader finished that rotation and began the next one).
    const shardFence = this.deps.shardFence?.(ms);
    this.deps.fence?.assertHeld();
    shardFence?.assertHeld();
    const write = deadline(undefined, signal, this.deps.fence?.signal, shardFence?.signal);
    let version: string;
    try {
      ({ version } = await putValue(spec.remoteRef, value, {
        requestToken: active.record.requestToken,
        keepVersions: spec.keepVersions ?? DEFAULT_ROTATION_KEEP_VERSIONS,
        signal: write.signal,
      }));
    } finally {
      write.dispose();
    }
    active.version = version;
    this.deps.log.info('rotation written to the store', {
      managedSecret: `${ms.metadata.namespace}/${ms.metadata.name}`,
      store: storeName,
      key: spec.remoteRef.key,
      version,
    });
    if (process.env[CRASH_AFTER_WRITE_ENV] === '1') {
      this.deps.log.warn('test hook: crashing between the store write and the Secret update', {});
      process.kill(process.pid, 'SIGKILL');
      await new Promise(() => undefined);
    }
  }

  /** Step 4: the Secret holds the new value; record it and clear the in-progress record. */
  async finish(ms: ManagedSecret, active: ActiveRotation, now: Date): Promise<void> {
    const spec = ms.spec.rotation as RotationSpec;
    const next = nextRotationAfter(spec, now);
    const { conditions } = setCondition(ms.status?.conditions, {
      type: 'Rotated',
      status: 'True',
      reason: Reasons.Rotated,
      message: `rotated ${spec.remoteRef.key}${spec.remoteRef.property ? `[${spec.remoteRef.property}]` : ''} to version ${active.version ?? 'unknown'}; next rotation due ${iso(next)}`,
      observedGeneration: ms.metadata.generation,
    });
    const updated = await this.deps.patchStatus(ms, {
      conditions,
      lastRotationTime: iso(now),
      nextRotationTime: iso(next),
      rotationVersion: active.version,
      rotationInProgress: null,
    });
    if (updated) ms.status = updated;
    this.deps.metrics.rotations.inc({ result: 'success' });
    this.deps.events.emit(
      this.deps.eventTarget(ms),
      'Normal',
      Reasons.Rotated,
      `rotated ${spec.remoteRef.key} (version ${active.version ?? 'unknown'})`,
    );
    this.deps.log.info('rotated', {
      managedSecret: `${ms.metadata.namespace}/${ms.metadata.name}`,
      version: active.version,
      trigger: active.trigger,
      nextRotationTime: iso(next),
    });
  }

  /** A failed step: Rotated=False with the reason; the old value stays in the store and the Secret. */
  async fail(ms: ManagedSecret, message: string, reason: string = Reasons.RotationFailed): Promise<void> {
    this.deps.metrics.rotations.inc({ result: 'error' });
    this.deps.log.warn('rotation failed', {
      managedSecret: `${ms.metadata.namespace}/${ms.metadata.name}`,
      reason,
      message,
    });
    this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', reason, message);
    const { conditions, changed } = setCondition(ms.status?.conditions, {
      type: 'Rotated',
      status: 'False',
      reason,
      message: `${message}; the previous value stays in place`,
      observedGeneration: ms.metadata.generation,
    });
    if (!changed) return;
    const updated = await this.deps.patchStatus(ms, { conditions }).catch(() => undefined);
    if (updated) ms.status = updated;
  }
}

/** The Rotated condition, for tests and the CLI. */
export function rotatedCondition(ms: ManagedSecret): Condition | undefined {
  return ms.status?.conditions?.find((c) => c.type === 'Rotated');
}
