// Samples a running operator process once a second: its resident memory from
// /proc and its longest event-loop delay from its own /metrics. prom-client's
// `nodejs_eventloop_lag_max_seconds` is the maximum of a
// perf_hooks.monitorEventLoopDelay histogram (a 10 ms timer whose lateness is
// recorded) that prom-client resets at every scrape, so the maximum over a run
// is the maximum over back-to-back scrapes, and every scrape of the process
// must go through here (a scrape elsewhere would reset the histogram and lose
// its maximum). The figure is the time between two ticks of that timer: a
// synchronous block, plus up to the 10 ms resolution, plus any time the
// process waited for a CPU (on a loaded machine that is not the operator's).
import { round, sleep, sum, type Sample } from './util.js';
import type { OperatorProcess } from './context.js';

export const EVENT_LOOP_LAG_MAX = 'secretsync_nodejs_eventloop_lag_max_seconds';

export interface SamplerFigures {
  samples: number;
  /**
   * The first window's longest delay, in ms: it reaches back to when the process
   * enabled the histogram, so it holds the start-up (module loading) and is not
   * counted in the figures below.
   */
  eventLoopStartupMs: number;
  /** Longest event-loop delay seen in any one-second window, in ms. */
  eventLoopMaxMs: number;
  /** Windows whose longest delay passed 100 ms. */
  eventLoopOver100Ms: number;
  /** When those windows ended, in seconds after the operator was spawned, with their delay in ms (`12.3s:141ms`). */
  eventLoopOver100MsAt: string[];
  /** The 99th percentile over windows of the per-window maximum, in ms. */
  eventLoopWindowP99Ms: number;
  /** Largest VmRSS sampled, MiB (VmHWM read at stop is the true peak). */
  rssMaxMiB: number;
  /** Largest `secretsync_queue_depth` scraped (the gauge updates every few seconds). */
  queueDepthMax: number;
}

export class OperatorSampler {
  private readonly lagMaxMs: number[] = [];
  /** Windows over 100 ms: when each ended (seconds after spawn) and its delay. */
  private readonly lateWindows: string[] = [];
  private startupLagMs: number | undefined;
  private rssMax = 0;
  private queueDepthMax = 0;
  private running = true;
  private readonly loop: Promise<void>;
  private scrapes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly operator: OperatorProcess,
    private readonly everyMs = 1_000,
  ) {
    this.loop = this.run();
  }

  /** A scrape of the operator's /metrics that also feeds the event-loop figure (use it for every scrape). */
  async scrape(): Promise<Sample[]> {
    // One scrape at a time: each resets the histogram, and two at once would split one window.
    const next = this.scrapes.then(async () => {
      const samples = await this.operator.metrics();
      const lag = sum(samples, EVENT_LOOP_LAG_MAX);
      if (this.startupLagMs === undefined) this.startupLagMs = lag * 1000;
      else if (lag > 0) {
        this.lagMaxMs.push(lag * 1000);
        if (lag > 0.1)
          this.lateWindows.push(
            `${round((Date.now() - this.operator.startedAt) / 1000, 1)}s:${round(lag * 1000, 0)}ms`,
          );
      }
      this.queueDepthMax = Math.max(this.queueDepthMax, sum(samples, 'secretsync_queue_depth'));
      return samples;
    });
    this.scrapes = next.catch(() => undefined);
    return next;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        this.rssMax = Math.max(this.rssMax, this.operator.rssMiB());
        await this.scrape();
      } catch {
        // The process is stopping, or /metrics was slow to answer: the next tick tries again.
      }
      await sleep(this.everyMs);
    }
  }

  async stop(): Promise<SamplerFigures> {
    this.running = false;
    await this.loop;
    const sorted = [...this.lagMaxMs].sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(0.99 * sorted.length) - 1))] ?? Number.NaN;
    return {
      samples: sorted.length,
      eventLoopStartupMs: round(this.startupLagMs ?? Number.NaN, 1),
      eventLoopMaxMs: round(sorted.at(-1) ?? Number.NaN, 1),
      eventLoopOver100Ms: sorted.filter((ms) => ms > 100).length,
      eventLoopOver100MsAt: [...this.lateWindows],
      eventLoopWindowP99Ms: round(p99, 1),
      rssMaxMiB: round(this.rssMax, 1),
      queueDepthMax: this.queueDepthMax,
    };
  }
}
