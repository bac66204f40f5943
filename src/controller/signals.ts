// Deadlines for shared work. Several syncs may wait on one backend read or one
// client connect: the shared work runs under its own deadline, and each waiter
// stops waiting when its own signal fires, without cancelling the work for the
// others.
import { DeadlineError } from '../api/errors.js';

/** The error a waiter sees when its signal fires: the signal's reason if it is an Error, else a DeadlineError. */
export function abortError(signal: AbortSignal, what: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== 'TimeoutError' && reason.name !== 'AbortError') return reason;
  return new DeadlineError(`${what}: gave up waiting (deadline passed or the operator is stopping)`);
}

/** Resolves or rejects like `work`, or rejects as soon as `signal` fires. */
export function raceSignal<T>(work: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** A signal that fires after `ms`, or when any of `parents` fires. */
export function deadline(ms: number, ...parents: (AbortSignal | undefined)[]): AbortSignal {
  const signals = [AbortSignal.timeout(ms), ...parents.filter((s): s is AbortSignal => s !== undefined)];
  return signals.length === 1 ? (signals[0] as AbortSignal) : AbortSignal.any(signals);
}
