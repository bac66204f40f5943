// Status writes for our kinds: merge patches of the status subresource only
// (never the spec, so GitOps tools see no drift from us), written only when
// something in them changed, so a steady state costs no API writes.
import {
  API_VERSION,
  type AnyStore,
  type Condition,
  type IssuedStatus,
  type ManagedSecret,
  type ManagedSecretStatus,
  type RolloutRestartStatus,
} from '../api/types.js';
import { isFenceError } from '../api/errors.js';
import { isNotFound, KubeApiError, type KubeClient, type WriteFence } from '../kube/client.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ServedRegion } from '../providers/provider.js';
import { targetName } from '../secrets/desired.js';
import { getCondition, setCondition } from './conditions.js';
import { canonical } from './issued.js';

const GROUP_PREFIX = `/apis/${API_VERSION}`;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * How long a successful sync that changed nothing may leave
 * `lastSuccessfulSyncTime` behind before it is written again: writing it on
 * every refresh would cost one API write per ManagedSecret per interval. The
 * exact time is in the metric `secretsync_managedsecret_last_success_timestamp_seconds`.
 */
export const SUCCESS_TIME_HEARTBEAT_MS = 60 * 60_000;

/** What recordSync did: nothing to change, a write, a write that failed, or none because the write was fenced. */
export type Recorded = 'unchanged' | 'written' | 'failed' | 'fenced';

/** The outcome of one sync, as status records it. */
export interface SyncRecord {
  ready: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
  /** The HMAC of the data now in the Secret (unchanged on failure). */
  syncedVersion: string | undefined;
  /** The Secret was written. */
  wrote: boolean;
  /** When the sync succeeded; undefined for a failure. */
  succeededAt: number | undefined;
  /** The region (and endpoint) that served (stores with failover); null: none (cleared); undefined: unchanged. */
  served?: ServedRegion | null;
  /** What issued sources hold now (src/controller/issued.ts); null: none (cleared); undefined: unchanged. */
  issued?: IssuedStatus[] | null;
  /**
   * A rollout restart this sync's data change asks for (see RolloutRestarter.planChange): recorded in the
   * same patch as the sync, so a pending restart costs no write of its own; undefined: unchanged.
   */
  rolloutRestart?: RolloutRestartStatus;
}

export class StatusWriter {
  constructor(
    private readonly client: KubeClient,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** A merge patch of `status`; null fields are removed. */
  patch(obj: AnyStore | ManagedSecret, status: object, signal?: AbortSignal): Promise<unknown> {
    const plural =
      obj.kind === 'ManagedSecret'
        ? 'managedsecrets'
        : obj.kind === 'SecretStore'
          ? 'secretstores'
          : 'clustersecretstores';
    const ns = obj.metadata.namespace ? `/namespaces/${obj.metadata.namespace}` : '';
    return this.client.request('PATCH', `${GROUP_PREFIX}${ns}/${plural}/${obj.metadata.name}/status`, {
      body: { status },
      contentType: 'application/merge-patch+json',
      // The same merge patch twice leaves the same status: safe to repeat after a 503 or a reset.
      idempotent: true,
      ...(signal ? { signal } : {}),
    });
  }

  /** Patches a ManagedSecret's status and returns what the server now holds. */
  async patchManagedSecret(
    ms: ManagedSecret,
    status: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<ManagedSecretStatus | undefined> {
    const updated = (await this.patch(ms, status, signal)) as ManagedSecret;
    this.metrics.kubeWrites.inc({ resource: 'managedsecrets/status', verb: 'patch' });
    return updated.status;
  }

  /**
   * Records a sync in a ManagedSecret's status when anything in it changed.
   * `lastSyncTime` moves when data was written or Ready changed;
   * `lastSuccessfulSyncTime` with every success that wrote or changed Ready,
   * and at least every SUCCESS_TIME_HEARTBEAT_MS. Says whether it wrote: a
   * write that failed is 'failed' (the caller looks again with back-off:
   * nothing else would bring the record back before the next refresh), or
   * 'fenced' when this replica may no longer write it (its new owner records).
   */
  async recordSync(ms: ManagedSecret, record: SyncRecord, signal?: AbortSignal): Promise<Recorded> {
    const old = ms.status ?? {};
    const now = Date.now();
    const { conditions, changed } = setCondition(old.conditions, {
      ...record.ready,
      observedGeneration: ms.metadata.generation,
    });
    const readyStatusChanged = getCondition(old.conditions, 'Ready')?.status !== record.ready.status;
    const lastSuccess = old.lastSuccessfulSyncTime ? Date.parse(old.lastSuccessfulSyncTime) : undefined;
    const successStale =
      record.succeededAt !== undefined &&
      (record.wrote ||
        readyStatusChanged ||
        lastSuccess === undefined ||
        record.succeededAt - lastSuccess >= SUCCESS_TIME_HEARTBEAT_MS);
    const status: ManagedSecretStatus = {
      conditions,
      observedGeneration: ms.metadata.generation,
      secretName: (ms.spec.target?.creationPolicy ?? 'Owner') === 'None' ? undefined : targetName(ms),
      syncedVersion: record.syncedVersion,
      lastSyncTime: record.wrote || readyStatusChanged || !old.lastSyncTime ? iso(now) : old.lastSyncTime,
      lastSuccessfulSyncTime:
        successStale && record.succeededAt !== undefined ? iso(record.succeededAt) : old.lastSuccessfulSyncTime,
      region: record.served === undefined ? old.region : (record.served?.region ?? undefined),
      endpoint: record.served === undefined ? old.endpoint : (record.served?.endpoint ?? undefined),
      issued: record.issued === undefined ? old.issued : (record.issued ?? undefined),
      // Only when this sync asks for a restart: re-sending the cached intent could bring back one just cleared.
      ...(record.rolloutRestart ? { rolloutRestart: record.rolloutRestart } : {}),
    };
    const same =
      !changed &&
      old.observedGeneration === status.observedGeneration &&
      old.secretName === status.secretName &&
      old.syncedVersion === status.syncedVersion &&
      old.lastSyncTime === status.lastSyncTime &&
      old.lastSuccessfulSyncTime === status.lastSuccessfulSyncTime &&
      old.region === status.region &&
      old.endpoint === status.endpoint &&
      // Compared with sorted keys: the server returns the fields sorted, we build them in another order.
      JSON.stringify(canonical(old.issued)) === JSON.stringify(canonical(status.issued)) &&
      (record.rolloutRestart === undefined ||
        (old.rolloutRestart?.pendingVersion === record.rolloutRestart.pendingVersion &&
          old.rolloutRestart.notBefore === record.rolloutRestart.notBefore));
    if (same) return 'unchanged';
    try {
      // A region or endpoint no longer reported is removed (null in a merge patch).
      const clear = (field: 'region' | 'endpoint' | 'issued') =>
        status[field] === undefined && old[field] !== undefined ? { [field]: null } : {};
      const updated = await this.patch(
        ms,
        { ...status, ...clear('region'), ...clear('endpoint'), ...clear('issued') },
        signal,
      );
      // Keep the cache's copy current so the next reconcile compares against what we wrote.
      ms.status = (updated as ManagedSecret).status ?? status;
      this.metrics.kubeWrites.inc({ resource: 'managedsecrets/status', verb: 'patch' });
      return 'written';
    } catch (err) {
      // Deleted: nothing to record. Fenced: the replica that holds it now records its own pass.
      if (isNotFound(err)) return 'written';
      if (isFenceError(err)) return 'fenced';
      this.log.warn('could not write status', {
        managedSecret: `${ms.metadata.namespace}/${ms.metadata.name}`,
        error: errorMessage(err),
      });
      return 'failed';
    }
  }

  /**
   * Removes status.rolloutRestart once its restart is done, only if it still asks
   * for `version` (a JSON patch whose `test` fails leaves a newer intent alone).
   * Fenced like the workload patch: a replica that lost the shard writes nothing.
   * Returns what the server now holds, or undefined when a newer intent (or none) is there.
   */
  async clearRolloutRestart(
    ms: ManagedSecret,
    version: string,
    fence?: WriteFence,
  ): Promise<ManagedSecretStatus | undefined> {
    const ns = ms.metadata.namespace ? `/namespaces/${ms.metadata.namespace}` : '';
    try {
      const updated = await this.client.request<ManagedSecret>(
        'PATCH',
        `${GROUP_PREFIX}${ns}/managedsecrets/${ms.metadata.name}/status`,
        {
          body: [
            { op: 'test', path: '/status/rolloutRestart/pendingVersion', value: version },
            { op: 'remove', path: '/status/rolloutRestart' },
          ],
          contentType: 'application/json-patch+json',
          // Test-then-remove: repeating it after a lost response fails the test, which is the same outcome.
          idempotent: true,
          ...(fence ? { fence } : {}),
        },
      );
      this.metrics.kubeWrites.inc({ resource: 'managedsecrets/status', verb: 'patch' });
      return updated.status ?? {};
    } catch (err) {
      // 422: the test failed (a newer change asked for another restart, or the intent is gone already); 404: deleted.
      if (err instanceof KubeApiError && (err.status === 422 || err.status === 404)) return undefined;
      throw err;
    }
  }
}
