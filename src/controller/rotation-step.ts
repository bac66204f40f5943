// Rotation as a step of a ManagedSecret's reconcile: before the sync, a due
// rotation is recorded and its new value written to the store; after the sync,
// it is finished only if the Secret now holds that value. The protocol itself
// (records, tokens, exactly-once) is in rotation.ts; this file decides when to
// run it and what to tell the reconciler.
import { errorInfo, SpecError } from '../api/errors.js';
import { Reasons, type ManagedSecret } from '../api/types.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import { storeLabel } from '../providers/provider.js';
import { providerFor } from '../providers/registry.js';
import type { ClusterCache } from './caches.js';
import type { FetchCache } from './fetch-cache.js';
import { rotationDecision, validateRotation, type ActiveRotation, type Rotator } from './rotation.js';
import type { StoreClients } from './store-clients.js';

export interface RotationStepDeps {
  rotator: Rotator;
  caches: ClusterCache;
  clients: StoreClients;
  fetchCache: FetchCache;
  log: Logger;
}

/** What the reconciler does next about a rotation. */
export type RotationStart =
  /** Nothing is due. */
  | { kind: 'none' }
  /** The store holds a new value: sync now with a fresh read, then `finish`. */
  | { kind: 'written'; active: ActiveRotation }
  /** Due but failed before the store had the new value (Rotated=False says why): retry, backing off if transient. */
  | { kind: 'failed'; transient: boolean; retryAfterMs: number | undefined };

export class RotationStep {
  constructor(private readonly deps: RotationStepDeps) {}

  async begin(ms: ManagedSecret, now: number, signal: AbortSignal): Promise<RotationStart> {
    if (!ms.spec.rotation || !rotationDecision(ms, new Date(now)).due) return { kind: 'none' };
    const { rotator } = this.deps;
    try {
      validateRotation(ms.spec.rotation);
    } catch (err) {
      // A spec problem: nothing recorded, nothing written; a spec change brings it back.
      await rotator.fail(ms, errorMessage(err), Reasons.InvalidSpec);
      return { kind: 'failed', transient: false, retryAfterMs: undefined };
    }
    let active: ActiveRotation | undefined;
    try {
      active = await rotator.begin(ms, new Date(now));
    } catch (err) {
      this.deps.log.warn('could not record the rotation in status; not rotating yet', {
        managedSecret: `${ms.metadata.namespace}/${ms.metadata.name}`,
        error: errorMessage(err),
      });
      return { kind: 'failed', transient: true, retryAfterMs: errorInfo(err, '').retryAfterMs };
    }
    if (!active) return { kind: 'none' };
    const resolved = this.deps.caches.resolveStore(ms);
    if ('reason' in resolved) {
      await rotator.fail(ms, resolved.message);
      return { kind: 'failed', transient: true, retryAfterMs: undefined };
    }
    const { store, storeKey } = resolved;
    const storeName = storeLabel(store);
    try {
      if (!providerFor(store.spec.provider).capabilities.write)
        throw new SpecError(`${storeName} cannot be written to: its provider does not support rotation`);
      const client = await this.deps.clients.get(storeKey, store, { signal });
      await rotator.write(ms, client, active, storeName, signal);
    } catch (err) {
      this.deps.clients.afterError(storeKey, err);
      const info = errorInfo(err, Reasons.RotationFailed);
      await rotator.fail(ms, `${storeName}: ${info.message}`);
      return { kind: 'failed', transient: info.retry === 'transient', retryAfterMs: info.retryAfterMs };
    }
    // The next reads of this store must see the new version.
    this.deps.fetchCache.invalidate(storeKey);
    return { kind: 'written', active };
  }

  /**
   * After the sync: the rotation is finished only if the sync just succeeded
   * (the Secret holds the new value); otherwise it stays in progress and is
   * resumed, with the same token, on the next pass. Returns false when the
   * finish could not be recorded (retry).
   */
  async finish(ms: ManagedSecret, active: ActiveRotation, synced: boolean): Promise<boolean> {
    const { rotator } = this.deps;
    if (!synced) {
      await rotator.fail(ms, 'the new value is in the store but the Secret could not be updated yet', 'RotationPending');
      return true;
    }
    try {
      await rotator.finish(ms, active, new Date());
      return true;
    } catch (err) {
      this.deps.log.warn('could not record the finished rotation; it is finished again (same token) on the next pass', {
        managedSecret: `${ms.metadata.namespace}/${ms.metadata.name}`,
        error: errorMessage(err),
      });
      return false;
    }
  }

  /**
   * Milliseconds until the reconciler should look at this rotation again, or
   * undefined. A rotation due but not acted on in this pass (the status seen
   * predates the pass that finished it) is looked at again soon; the queue
   * never lets that shorten a back-off.
   */
  nextLookMs(ms: ManagedSecret, now: number): number | undefined {
    const decision = rotationDecision(ms, new Date(now));
    if (decision.next) return Math.max(decision.next.getTime() - now, 500);
    return decision.due ? 5_000 : undefined;
  }
}
