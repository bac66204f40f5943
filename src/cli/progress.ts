// Progress of long commands (backup, restore, reencrypt over many objects or
// files) on stderr: a bar redrawn in place on a terminal, plain lines every few
// seconds otherwise (CI logs keep each line). It prints step names and counts
// only, never a name of an object or a value.
//
// Written by hand (about 100 lines) rather than with cli-progress: its
// non-terminal mode repeats the bar's own text on a timer, while a CI log
// wants short count lines and a line when a step ends, and the bar itself is a
// few lines of ANSI.
import type { ProgressStream } from './main.js';

export interface Progress {
  /** `done` of `total` units of `step` ("applying objects"); a new step ends the previous one. */
  update(step: string, done: number, total: number): void;
  /** Ends the output: the last state stays on screen (a terminal) or is printed (a log). */
  end(): void;
}

export interface ProgressOptions {
  /** A log line at most this often, besides the one when a step ends (default 5 s). */
  lineIntervalMs?: number;
  /** Terminal redraws at most this often (default 100 ms). */
  redrawMs?: number;
  now?: () => number;
}

const noProgress: Progress = { update: () => undefined, end: () => undefined };

/** Progress for `label` (the command) on `stream`; nothing without a stream. */
export function createProgress(
  stream: ProgressStream | undefined,
  label: string,
  options: ProgressOptions = {},
): Progress {
  if (!stream) return noProgress;
  const now = options.now ?? Date.now;
  return stream.isTTY
    ? terminalProgress(stream, label, now, options.redrawMs ?? 100)
    : logProgress(stream, label, now, options.lineIntervalMs ?? 5000);
}

interface State {
  step: string;
  done: number;
  total: number;
}

function counts(s: State): string {
  const pct = s.total > 0 ? Math.floor((100 * s.done) / s.total) : 100;
  return `${s.done}/${s.total} (${pct}%)`;
}

function logProgress(stream: ProgressStream, label: string, now: () => number, intervalMs: number): Progress {
  let current: State | undefined;
  let lastLine = 0;
  let printed = true;
  const print = (s: State) => {
    stream.write(`${label}: ${s.step} ${counts(s)}${s.done >= s.total ? ', done' : ''}\n`);
    lastLine = now();
    printed = true;
  };
  return {
    update(step, done, total) {
      if (current && current.step !== step && !printed) print(current);
      if (!current || current.step !== step) lastLine = now();
      current = { step, done, total };
      printed = false;
      if (done >= total || now() - lastLine >= intervalMs) print(current);
    },
    end() {
      if (current && !printed) print(current);
    },
  };
}

function terminalProgress(stream: ProgressStream, label: string, now: () => number, redrawMs: number): Progress {
  let current: State | undefined;
  let lastDraw = -Infinity;
  let drawn = false;
  /** The current state is newer than the frame on screen. */
  let stale = false;
  const draw = (s: State) => {
    const text = `${label}: ${s.step} `;
    const tail = ` ${counts(s)}`;
    // A pseudo-terminal without a size reports 0 columns.
    const room = (stream.columns || 80) - text.length - tail.length - 3;
    const width = Math.max(10, Math.min(40, room));
    const filled = s.total > 0 ? Math.round((width * Math.min(s.done, s.total)) / s.total) : width;
    // \r back to the start of the line, \x1b[K clears what a longer previous frame left.
    stream.write(`\r${text}[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]${tail}\x1b[K`);
    lastDraw = now();
    drawn = true;
    stale = false;
  };
  const finish = () => {
    if (!current) return;
    if (stale) draw(current);
    stream.write('\n');
    drawn = false;
  };
  return {
    update(step, done, total) {
      if (current && current.step !== step) finish();
      current = { step, done, total };
      stale = true;
      if (!drawn || done >= total || now() - lastDraw >= redrawMs) draw(current);
    },
    end() {
      if (drawn) finish();
      current = undefined;
    },
  };
}
