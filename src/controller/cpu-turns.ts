// Turns on the event loop for CPU-heavy steps. One step of a sync (compiling a
// pattern, rendering a 64 KiB template, hashing or serialising a 1 MiB Secret) takes up to tens
// of milliseconds; when many syncs become ready together (reads that complete in
// one poll phase, a refresh grid), their steps would run back to back in one
// event-loop turn, and timers (the leader's renewals, watch watchdogs) and other
// namespaces' events wait behind all of them: a hostile namespace measured 300–600 ms.
//
// A sync hands such a step to `run()`. Steps run in the order they came, each
// at once while the current turn's budget lasts; past it, the rest wait for the
// next turn (a timer), so timers and I/O run in between. A step is never split:
// one turn holds at most the budget plus one step.
import { performance } from 'node:perf_hooks';

/**
 * 10 ms: with 20 ms, the first sync of twenty 1 MiB Secrets (serialising each,
 * then writing it and decoding its watch event) kept the loop 104–110 ms late
 * in the hostile benchmark; with 10 ms, 82–93 ms. Small steps are not slowed:
 * a turn with room runs them at once.
 */
export const DEFAULT_TURN_BUDGET_MS = 10;

interface Pending {
  step: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class CpuTurns {
  private turnStart = 0;
  /** Set while the event loop is in the turn that began at `turnStart` (an immediate clears it). */
  private inTurn = false;
  private readonly queue: Pending[] = [];
  private head = 0;
  private draining = false;
  private waiting = false;

  constructor(private readonly budgetMs = DEFAULT_TURN_BUDGET_MS) {}

  /** Runs a synchronous, CPU-heavy step in its turn; resolves (or rejects) with its outcome. */
  run<T>(step: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ step, resolve: resolve as (value: unknown) => void, reject });
      if (!this.draining && !this.waiting) this.drain();
    });
  }

  /** Steps in the order they came, while this turn's budget lasts; the rest in the next turn. */
  private drain(): void {
    if (!this.inTurn) this.begin();
    this.draining = true;
    try {
      while (this.head < this.queue.length) {
        if (performance.now() - this.turnStart > this.budgetMs) {
          this.waiting = true;
          setTimeout(() => {
            this.waiting = false;
            this.begin();
            this.drain();
          }, 0);
          return;
        }
        const next = this.queue[this.head++] as Pending;
        try {
          next.resolve(next.step());
        } catch (err) {
          next.reject(err);
        }
      }
      this.queue.length = 0;
      this.head = 0;
    } finally {
      this.draining = false;
    }
  }

  private begin(): void {
    this.turnStart = performance.now();
    this.inTurn = true;
    setImmediate(() => (this.inTurn = false));
  }
}
