// The one error model. Every error the operator raises on purpose says which
// status-condition reason it maps to and whether trying again can help, so the
// reconcilers derive status, retry and back-off from the error itself instead
// of an `instanceof` chain. Messages name the resource, store and key, never a
// value; `boundedText` keeps any text that came from elsewhere short and flat.

/** How a failure is retried. */
export type Retry =
  /** Trying again may help (network, throttling, a key that may appear): back off per item. */
  | 'transient'
  /** Only a change by a person helps (the spec, a referenced object): wait for that change. */
  | 'terminal';

export interface SecretsyncErrorOptions {
  cause?: unknown;
  /** The server or backend said when to try again (Retry-After, throttling). */
  retryAfterMs?: number;
  /** The provider client cannot be used again (revoked credentials, a closed session): build a new one. */
  clientUnusable?: boolean;
}

/** The base of every error the operator classifies. */
export class SecretsyncError extends Error {
  /** The reason on the Ready condition (and the Warning Event) this error maps to. */
  readonly reason: string;
  readonly retry: Retry;
  readonly retryAfterMs: number | undefined;
  readonly clientUnusable: boolean;

  constructor(reason: string, retry: Retry, message: string, options: SecretsyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SecretsyncError';
    this.reason = reason;
    this.retry = retry;
    this.retryAfterMs = options.retryAfterMs;
    this.clientUnusable = options.clientUnusable ?? false;
  }

  get transient(): boolean {
    return this.retry === 'transient';
  }
}

export const isSecretsyncError = (err: unknown): err is SecretsyncError => err instanceof SecretsyncError;

/** The spec cannot work as written (a bad duration, pattern, type or reference). */
export class SpecError extends SecretsyncError {
  constructor(message: string, reason = 'InvalidSpec') {
    super(reason, 'terminal', message);
    this.name = 'SpecError';
  }
}

/**
 * A bound was passed (template size, rendered size, keys, entries, value size).
 * `reason` names the bound. Spec-made bounds are terminal; bounds that data from
 * the backend passed are transient (the data may shrink).
 */
export class LimitError extends SecretsyncError {
  constructor(reason: string, message: string, retry: Retry = 'terminal') {
    super(reason, retry, message);
    this.name = 'LimitError';
  }
}

/** An operation ran out of its time budget (a hanging backend or API server). */
export class DeadlineError extends SecretsyncError {
  constructor(message: string, options: SecretsyncErrorOptions = {}) {
    super('DeadlineExceeded', 'transient', message, options);
    this.name = 'DeadlineError';
  }
}

/** This replica no longer holds the leader Lease: nothing may be written. */
export class NotLeaderError extends SecretsyncError {
  constructor(message = 'this replica does not hold the leader Lease; not writing') {
    super('NotLeader', 'transient', message);
    this.name = 'NotLeaderError';
  }
}

/** This replica does not hold the shard of the object it was about to write (sharding): nothing of that shard may be written. */
export class NotShardOwnerError extends SecretsyncError {
  constructor(shard: number) {
    super('NotShardOwner', 'transient', `this replica does not hold shard ${shard}; not writing`);
    this.name = 'NotShardOwnerError';
  }
}

/** The leader's or a shard's fence refused a write: this replica may no longer make it (the new holder does). */
export function isFenceError(err: unknown): boolean {
  return err instanceof NotShardOwnerError || (err instanceof SecretsyncError && err.reason === 'NotLeader');
}

/** What the reconcilers need to know of any error, ours or not. */
export interface ErrorInfo {
  reason: string;
  retry: Retry;
  message: string;
  retryAfterMs: number | undefined;
  clientUnusable: boolean;
}

/**
 * Classifies any thrown value. Errors that are not ours (a bug, a library's
 * TypeError) are transient under `fallbackReason`: the operator keeps trying
 * rather than give up on an object because of its own fault.
 */
export function errorInfo(err: unknown, fallbackReason: string): ErrorInfo {
  if (err instanceof SecretsyncError)
    return {
      reason: err.reason,
      retry: err.retry,
      message: err.message,
      retryAfterMs: err.retryAfterMs,
      clientUnusable: err.clientUnusable,
    };
  return {
    reason: fallbackReason,
    retry: 'transient',
    message: boundedText(err instanceof Error ? err.message : String(err)),
    retryAfterMs: undefined,
    clientUnusable: false,
  };
}

/** Longest text from outside (a backend's or server's message) kept in a status field, Event or log. */
export const MAX_FOREIGN_TEXT = 200;

/**
 * Text from outside made safe to show: one line, printable characters only,
 * at most `max` characters. It never makes text secret-free on its own: callers
 * pass only error codes and messages, never response bodies or values.
 */
export function boundedText(text: string, max = MAX_FOREIGN_TEXT): string {
  let flat = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    // Control characters (and the line and paragraph separators) become spaces.
    flat +=
      code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0) || code === 0x2028 || code === 0x2029 ? ' ' : ch;
  }
  flat = flat.replace(/\s+/g, ' ').trim();
  const chars = Array.from(flat);
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : flat;
}
