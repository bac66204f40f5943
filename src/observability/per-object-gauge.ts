// A gauge with one series per ManagedSecret (namespace, name): the last-success
// timestamp its alert reads. prom-client's Gauge keeps each series as a
// labelled object and writes all of them in one synchronous piece: at 50,000
// ManagedSecrets a full scrape held the event loop for about 350 ms plus the
// garbage it left (the scale benchmark's CPU profile), once per Prometheus
// scrape, and every change arriving meanwhile waited. This one keeps a Map and
// writes the exposition text in slices with a turn of the event loop between
// them. Only this family needs it; the others have bounded label sets.
import { setImmediate as nextTurn } from 'node:timers/promises';

export interface ObjectLabels {
  namespace: string;
  name: string;
}

/** Series written between two turns of the event loop. */
const SLICE = 2_000;

/** Prometheus text format: a label value escapes backslash, double quote and newline. */
const escapeLabel = (v: string) =>
  /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;

const formatValue = (v: number) =>
  Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v);

export class PerObjectGauge {
  private readonly series = new Map<string, { labels: ObjectLabels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  set(labels: ObjectLabels, value: number): void {
    const key = `${labels.namespace}/${labels.name}`;
    const entry = this.series.get(key);
    if (entry) entry.value = value;
    else this.series.set(key, { labels: { namespace: labels.namespace, name: labels.name }, value });
  }

  remove(labels: ObjectLabels): void {
    this.series.delete(`${labels.namespace}/${labels.name}`);
  }

  get size(): number {
    return this.series.size;
  }

  /** Every series, shaped as prom-client's `get()` (for tests and callers that read values). */
  get(): Promise<{ values: { labels: ObjectLabels; value: number }[] }> {
    return Promise.resolve({
      values: [...this.series.values()].map((s) => ({ labels: { ...s.labels }, value: s.value })),
    });
  }

  /** The family in Prometheus text format, written in slices (see the file's opening comment). */
  async text(slice = SLICE): Promise<string> {
    const parts = [`# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`];
    let lines: string[] = [];
    for (const { labels, value } of this.series.values()) {
      lines.push(
        `${this.name}{namespace="${escapeLabel(labels.namespace)}",name="${escapeLabel(labels.name)}"} ${formatValue(value)}\n`,
      );
      if (lines.length >= slice) {
        parts.push(lines.join(''));
        lines = [];
        await nextTurn();
      }
    }
    parts.push(lines.join(''));
    return parts.join('');
  }
}
