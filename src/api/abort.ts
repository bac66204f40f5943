// Cancellation and deadlines, shared by the controller, the Kubernetes client
// and the providers. The controller aborts a call's signal when the sync's
// deadline passes, the operator stops or this replica stops leading; a call
// must then return at once, even when the work under it (a read shared with
// other syncs, a credential exchange, a local read on a hung volume) cannot be
// stopped: each waiter stops waiting on its own signal, and the work stays
// bounded by its own timeouts.
import { DeadlineError, SecretsyncError, boundedText } from './errors.js';

/**
 * The error an aborted call ends with: the signal's reason when it is one of
 * ours (a DeadlineError, a NotLeaderError: the controller said why), else a
 * DeadlineError naming the call. Never a ProviderError: a cancelled call says
 * nothing about the backend, so it must not count against a region's breaker.
 */
export function abortError(signal: AbortSignal, what: string): SecretsyncError {
  const reason: unknown = signal.reason;
  if (reason instanceof SecretsyncError) return reason;
  const why =
    reason instanceof Error && reason.name === 'TimeoutError'
      ? 'its deadline passed'
      : reason instanceof Error && reason.message
        ? boundedText(reason.message, 80)
        : 'cancelled';
  return new DeadlineError(`${what}: stopped before it finished (${why})`, { cause: reason });
}

/** Throws `abortError` when the signal has already fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}

/**
 * `work`, or `abortError` as soon as the signal fires, whichever comes first.
 * The work is not stopped by this (pass the signal down where it can be);
 * its late result or failure is dropped.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortError(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => undefined);
      reject(abortError(signal, what));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** A signal with an end: `dispose` detaches it from its parents and clears its timer. */
export interface Deadline {
  readonly signal: AbortSignal;
  dispose(): void;
}

/**
 * A signal that fires after `ms` (if given) or when any of `parents` fires.
 * Not `AbortSignal.any`: on Node 20 a signal combined with a long-lived one
 * (the operator's stop signal, the leader's fence) stays referenced by it for
 * good (nodejs/node#55351, about 50 MB per million); this one detaches itself
 * when disposed or fired. Always `dispose` when the work is done.
 */
export function deadline(ms: number | undefined, ...parents: (AbortSignal | undefined)[]): Deadline {
  const controller = new AbortController();
  const cleanups: (() => void)[] = [];
  const dispose = () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
  const abort = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason);
    dispose();
  };
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      abort(parent.reason);
      break;
    }
    const onAbort = () => abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => parent.removeEventListener('abort', onAbort));
  }
  if (ms !== undefined && !controller.signal.aborted) {
    const timer = setTimeout(() => abort(new DOMException(`deadline of ${ms} ms passed`, 'TimeoutError')), ms);
    timer.unref();
    cleanups.push(() => clearTimeout(timer));
  }
  return { signal: controller.signal, dispose };
}
