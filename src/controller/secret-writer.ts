// Applies a planned Secret write, and never loses the Secret doing it. A type
// change or an immutable Secret cannot be updated in place: the new object is
// first validated by the API server in a dry run, the old one is deleted only
// with uid and resourceVersion preconditions (so a Secret someone changed in
// the meantime is never deleted), and if the create still fails the previous
// Secret is put back from what was read.
import { SecretsyncError } from '../api/errors.js';
import { isAlreadyExists, isConflict, isNotFound, type KubeClient } from '../kube/client.js';
import type { Metrics } from '../observability/metrics.js';
import type { SecretObject, SecretPlan } from '../secrets/desired.js';

/** A write the API server refused or that could not complete; says what became of the Secret. */
export class WriteError extends SecretsyncError {
  constructor(message: string, transient: boolean, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super('WriteFailed', transient ? 'transient' : 'terminal', message, options);
    this.name = 'WriteError';
  }
}

/** How a failed request is retried: the client's own classification where it has one. */
function retryOf(err: unknown): { transient: boolean; retryAfterMs?: number } {
  if (err instanceof SecretsyncError)
    return { transient: err.transient, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) };
  return { transient: true };
}

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** What a Secret looked like, as a body that creates it again (server-set fields dropped). */
export function restorableCopy(secret: SecretObject): SecretObject {
  const {
    resourceVersion: _rv,
    uid: _uid,
    creationTimestamp: _ct,
    deletionTimestamp: _dt,
    managedFields: _mf,
    generation: _g,
    ...metadata
  } = secret.metadata;
  return { ...secret, apiVersion: 'v1', kind: 'Secret', metadata };
}

export type WriteAction = 'create' | 'update' | 'recreate';

/** Set (to 1) only by tests: the process kills itself right after the DELETE of a recreate, before the POST. */
export const CRASH_AFTER_DELETE_ENV = 'SECRETSYNC_TEST_CRASH_AFTER_SECRET_DELETE';

export class SecretWriter {
  constructor(
    private readonly client: KubeClient,
    private readonly metrics: Metrics,
    /** Serialises a Secret for its request (the reconciler's CPU turns; a Secret may be 1 MiB). */
    private readonly encode: (secret: SecretObject) => Promise<Buffer> = (secret) =>
      Promise.resolve(Buffer.from(JSON.stringify(secret))),
  ) {}

  private collection(namespace: string): string {
    return `/api/v1/namespaces/${namespace}/secrets`;
  }

  /**
   * Performs a create, update or recreate plan. Conflicts (409) are thrown as
   * they are, for the caller to look again; anything else is a WriteError that
   * says whether the Secret is unchanged.
   */
  async apply(
    plan: Extract<SecretPlan, { action: WriteAction }>,
    existing: SecretObject | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const { namespace = '', name } = plan.body.metadata;
    const ref = `Secret ${namespace}/${name}`;
    try {
      if (plan.action === 'create') {
        const encodedBody = await this.encode(plan.body);
        await this.client.request('POST', this.collection(namespace), {
          body: plan.body,
          encodedBody,
          discardBody: true,
          signal,
        });
        this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'create' });
        return;
      }
      if (plan.action === 'update') {
        const encodedBody = await this.encode(plan.body);
        await this.client.request('PUT', `${this.collection(namespace)}/${name}`, {
          body: plan.body,
          encodedBody,
          discardBody: true,
          signal,
        });
        this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'update' });
        return;
      }
    } catch (err) {
      // Our cache was behind the server, or the Secret is not ours: the caller looks again.
      if (isConflict(err)) throw err;
      throw new WriteError(`could not write ${ref}: ${describe(err)}`, retryOf(err).transient, {
        cause: err,
        ...retryOf(err),
      });
    }
    if (!existing) throw new WriteError(`cannot replace ${ref}: it was not read first`, true);
    await this.recreate(plan.body, existing, signal);
  }

  private async recreate(body: SecretObject, existing: SecretObject, signal: AbortSignal): Promise<void> {
    const { namespace = '', name } = body.metadata;
    const ref = `Secret ${namespace}/${name}`;
    // 1. Would the API server take the new object? A dry-run create validates it fully and then meets the
    //    existing object (AlreadyExists): that answer means "valid". Anything else is why it would fail.
    try {
      await this.client.request('POST', this.collection(namespace), { body, query: { dryRun: 'All' }, signal });
    } catch (err) {
      if (!isAlreadyExists(err))
        throw new WriteError(
          `${ref} was not replaced (its type or immutability changes, so it must be recreated), because the API server refuses the new Secret: ${describe(err)}; the existing Secret is left as it was`,
          retryOf(err).transient,
          { cause: err, ...retryOf(err) },
        );
    }
    // 2. Delete exactly the Secret that was read: if anyone changed it since, the preconditions refuse (409).
    try {
      await this.client.request('DELETE', `${this.collection(namespace)}/${name}`, {
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          preconditions: { uid: existing.metadata.uid, resourceVersion: existing.metadata.resourceVersion },
        },
        signal,
      });
      this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'delete' });
      if (process.env[CRASH_AFTER_DELETE_ENV] === '1') process.kill(process.pid, 'SIGKILL');
    } catch (err) {
      if (isConflict(err)) throw err;
      // Already gone (deleted by someone else): nothing to put back, the create below makes it.
      if (!isNotFound(err))
        throw new WriteError(
          `could not replace ${ref}: ${describe(err)}; the existing Secret is left as it was`,
          retryOf(err).transient,
          {
            cause: err,
            ...retryOf(err),
          },
        );
    }
    // 3. Create the new one; if that fails after all, put the old one back. Neither step takes the sync's
    //    signal: once the old Secret is gone, giving up half way would leave none.
    try {
      await this.client.request('POST', this.collection(namespace), { body });
      this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'create' });
    } catch (err) {
      let restored = 'the previous Secret was put back';
      try {
        await this.client.request('POST', this.collection(namespace), { body: restorableCopy(existing) });
        this.metrics.kubeWrites.inc({ resource: 'secrets', verb: 'create' });
      } catch (restoreErr) {
        // Someone (or an earlier attempt) created it in the meantime: there is a Secret again.
        restored = isAlreadyExists(restoreErr)
          ? 'a Secret of that name exists again'
          : `putting the previous Secret back failed too (${describe(restoreErr)}); it is recreated on the next sync`;
      }
      throw new WriteError(`could not recreate ${ref}: ${describe(err)}; ${restored}`, true, { cause: err });
    }
  }
}
