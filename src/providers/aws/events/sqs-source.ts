// The event source of an AWS store: long-polls its SQS queue, tells the
// operator which keys changed, then deletes the messages. Kept apart from the
// SQS SDK (behind EventQueue) so that its decisions — what a failure does to
// the EventsDegraded state, how long to wait after one, what a poison message
// costs — are tested without a network, and the SDK is loaded only by stores
// that use events.
//
// Decisions:
// - Messages are deleted after the listener was told, whatever they held:
//   duplicates and reordering are harmless (a change only triggers a sync, and
//   the sync reads the current value).
// - Poison messages (not JSON, not an EventBridge event of a known shape, too
//   large) are deleted too, counted, and logged by message id and size, never
//   by content. Left in the queue they would come back after every visibility
//   timeout until a redrive policy (if the queue has one) moved them; they can
//   never become readable, and the next message must not wait for them.
// - Any receive failure other than throttling degrades the source at once
//   (the store's ManagedSecrets fall back to faster polling); throttling only
//   after THROTTLED_BEFORE_DEGRADED failures in a row. Each failure waits
//   (exponential back-off, or the server's Retry-After) before the next try.
// - The first good receive after degraded() says flowing() and changedAll():
//   changes made while the queue was gone (deleted, or unreadable past its
//   retention) may never arrive, and the faster polling stops now.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChangeListener, EventMessageOutcome } from '../../provider.js';
import { keysOfMessage, type EventService } from './event-keys.js';

/** One received message. */
export interface QueueMessage {
  /** The queue's message id (safe to log). */
  id: string;
  receiptHandle: string;
  body: string;
}

/** A failed queue call, classified (the SDK's error stays behind EventQueue). */
export class QueueError extends Error {
  constructor(
    /** EventsDegraded reason: QueueNotFound, AccessDenied, Throttled, QueueUnreachable. */
    readonly reason: string,
    /** Names the queue and the service's error code and short message; no body, no value. */
    message: string,
    /** How long the server asked us to wait, if it did. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'QueueError';
  }
}

/** The queue as the source uses it: one long poll, one batch delete. Both throw QueueError. */
export interface EventQueue {
  /** Up to 10 messages, waiting up to `long` ? 20 s : 0 s for the first; [] when none came. */
  receive(signal: AbortSignal, long: boolean): Promise<QueueMessage[]>;
  /** Deletes received messages; returns how many the queue refused to delete. */
  delete(messages: readonly QueueMessage[], signal: AbortSignal): Promise<number>;
}

/** A log line of the source: names, counts and reasons, never a body or a value. */
export type EventSourceLog = (level: 'info' | 'warn', message: string, fields: Record<string, string | number>) => void;

/** What the source counts (for metrics and tests). */
export interface EventSourceStats {
  /** Messages received. */
  received: number;
  /** Messages whose keys (or "anything") were passed to the listener. */
  handled: number;
  /** Well-formed events that change nothing the store reads (another source, a read-only call). */
  ignored: number;
  /** Messages set aside (deleted unread past their shape). */
  poison: number;
  /** Messages that named too many keys: changedAll(). */
  overflowed: number;
  /** Failed receives. */
  receiveErrors: number;
  /** Messages the queue refused to delete (they come back: a duplicate, harmless). */
  deleteErrors: number;
}

export interface SqsChangeSourceOptions {
  queue: EventQueue;
  service: EventService;
  /** `storeLabel(store)`, for log lines. */
  store: string;
  log?: EventSourceLog;
  /** Counts messages by outcome (ProviderContext.countEventMessages). */
  count?: (outcome: EventMessageOutcome, n: number) => void;
  /** First wait after a failure; doubled each time up to maxBackoffMs. Default 1 s. */
  initialBackoffMs?: number;
  /**
   * The operator was told degraded() before this source started (its client
   * could not be built at first): the first good receive says flowing().
   */
  startDegraded?: string;
  /** Default 15 s: an unreachable queue costs one request per 15 s, and recovery is seen within that. */
  maxBackoffMs?: number;
}

/** Throttled receives in a row before the source reports itself degraded. */
export const THROTTLED_BEFORE_DEGRADED = 3;

/** Consumes one store's queue until the signal aborts. */
export class SqsChangeSource {
  readonly stats: EventSourceStats = {
    received: 0,
    handled: 0,
    ignored: 0,
    poison: 0,
    overflowed: 0,
    receiveErrors: 0,
    deleteErrors: 0,
  };
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: SqsChangeSourceOptions) {
    this.initialBackoffMs = options.initialBackoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 15_000;
  }

  /** Runs until `signal` aborts; never throws. */
  async run(listener: ChangeListener, signal: AbortSignal): Promise<void> {
    let degradedReason = this.options.startDegraded;
    // Started degraded: the first receive is short, so that recovery is told at once.
    let failures = degradedReason !== undefined ? 1 : 0;
    while (!signal.aborted) {
      let messages: QueueMessage[];
      try {
        // After a failure, a short poll: a queue that is back says so at once, not after a 20 s wait.
        messages = await this.options.queue.receive(signal, failures === 0);
      } catch (err) {
        if (signal.aborted) break;
        failures += 1;
        this.stats.receiveErrors += 1;
        const failure =
          err instanceof QueueError
            ? err
            : new QueueError('QueueUnreachable', `${this.options.store}: SQS ReceiveMessage failed`);
        const tolerated = failure.reason === 'Throttled' && failures < THROTTLED_BEFORE_DEGRADED;
        if (!tolerated && degradedReason !== failure.reason) {
          degradedReason = failure.reason;
          safely(() => listener.degraded(failure.reason, failure.message));
          this.log('warn', 'event source degraded', { reason: failure.reason, error: failure.message });
        }
        if (!(await this.wait(this.backoffMs(failures, failure.retryAfterMs), signal))) break;
        continue;
      }
      failures = 0;
      if (degradedReason !== undefined) {
        degradedReason = undefined;
        safely(() => listener.flowing());
        // Events may have been lost while the queue failed: one full sync closes the gap.
        safely(() => listener.changedAll());
        this.log('info', 'event source flowing again', {});
      }
      if (messages.length > 0) await this.handle(messages, listener, signal);
    }
  }

  /** Tells the listener what the batch changed, then deletes every message of it. */
  private async handle(messages: QueueMessage[], listener: ChangeListener, signal: AbortSignal): Promise<void> {
    this.stats.received += messages.length;
    const outcomes = new Map<EventMessageOutcome, number>();
    const keys = new Set<string>();
    let all = false;
    for (const message of messages) {
      const verdict = keysOfMessage(message.body, this.options.service);
      const outcome: EventMessageOutcome =
        verdict.kind === 'keys' ? 'handled' : verdict.kind === 'all' ? 'overflowed' : verdict.kind;
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      switch (verdict.kind) {
        case 'keys':
          this.stats.handled += 1;
          for (const key of verdict.keys) keys.add(key);
          break;
        case 'all':
          this.stats.handled += 1;
          this.stats.overflowed += 1;
          all = true;
          this.log('warn', 'event names too many keys; syncing every ManagedSecret of the store', {
            messageId: message.id,
            why: verdict.why,
          });
          break;
        case 'ignored':
          this.stats.ignored += 1;
          break;
        case 'poison':
          this.stats.poison += 1;
          this.log('warn', 'poison message set aside (deleted)', {
            messageId: message.id,
            bytes: Buffer.byteLength(message.body),
            why: verdict.why,
          });
          break;
      }
    }
    for (const [outcome, n] of outcomes) this.count(outcome, n);
    let told = true;
    if (all) told = safely(() => listener.changedAll());
    else if (keys.size > 0) told = safely(() => listener.changed([...keys]));
    // A listener that threw was not told: the messages stay and come back after the visibility timeout.
    if (!told || signal.aborted) return;
    try {
      const refused = await this.options.queue.delete(messages, signal);
      this.stats.deleteErrors += refused;
      if (refused > 0) this.count('undeleted', refused);
    } catch (err) {
      if (signal.aborted) return;
      this.stats.deleteErrors += messages.length;
      this.count('undeleted', messages.length);
      this.log('warn', 'could not delete handled messages (they will be received again)', {
        error: err instanceof Error ? err.message : 'unknown error',
      });
    }
  }

  /** Exponential from initialBackoffMs, at most maxBackoffMs, with ±20 % jitter; a Retry-After wins when longer. */
  private backoffMs(failures: number, retryAfterMs: number | undefined): number {
    const exp = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** Math.min(failures - 1, 20));
    const jittered = exp * (0.8 + Math.random() * 0.4);
    return Math.max(jittered, retryAfterMs ?? 0);
  }

  /** False when the signal aborted during the wait. */
  private async wait(ms: number, signal: AbortSignal): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal });
      return true;
    } catch {
      return false;
    }
  }

  private count(outcome: EventMessageOutcome, n: number): void {
    safely(() => this.options.count?.(outcome, n));
  }

  private log(level: 'info' | 'warn', message: string, fields: Record<string, string | number>): void {
    safely(() => this.options.log?.(level, message, { store: this.options.store, ...fields }));
  }
}

/** Listener and log calls must not throw; if one does anyway, the loop goes on. False when it threw. */
function safely(call: () => void): boolean {
  try {
    call();
    return true;
  } catch {
    return false;
  }
}
