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
