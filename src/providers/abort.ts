// Cancellation of backend calls. The controller aborts a call's signal when
// the sync's deadline passes, the operator stops or this replica stops
// leading; a provider call must then return at once, even when the work under
// it (a credential exchange shared with other callers, a local read on a hung
// volume) cannot be stopped. That work stays bounded by the request timeouts.
import { DeadlineError, SecretsyncError, boundedText } from '../api/errors.js';

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
