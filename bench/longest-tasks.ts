// `npx tsx bench/longest-tasks.ts FILE.cpuprofile|DIR [--top N]`: the longest
// stretches in which an operator's event loop never went idle, from a V8 CPU
// profile (`npm run bench -- --cpu-prof-dir DIR`), each with the functions that
// took most of it. The event-loop figure of the hostile and noisy-neighbour
// scenarios says how long the loop was late; this says what it was doing. A
// stretch is a run of consecutive samples none of which is "(idle)". The
// profiler samples wall-clock time about every millisecond: while the process
// waits for a CPU (a loaded machine) no sample is taken, and the next one
// carries the whole wait, charged to whatever frame happened to be running. So
// each stretch also says its longest single gap, and how long it was without
// gaps over 20 ms: a stretch that is mostly one gap was the machine, not the code.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface BusyStretch {
  /** Milliseconds since the profile started. */
  atMs: number;
  ms: number;
  /** The longest time between two samples in the stretch (a wait for a CPU, when long). */
  maxGapMs: number;
  /** The stretch without gaps over GAP_MS: an estimate of the time the process actually ran. */
  runningMs: number;
  /** Functions with the most samples in the stretch (self time, in ms), heaviest first. */
  top: { frame: string; ms: number }[];
}

const frameName = (n: ProfileNode): string => {
  const { functionName, url, lineNumber } = n.callFrame;
  const file = url ? basename(url.replace(/^file:\/\//, '')) : '';
  return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
};

/** A time between two samples longer than this is taken for a wait for a CPU. */
export const GAP_MS = 20;

/** The `top` longest busy stretches of a profile (by time the process ran in them), longest first. */
export function busyStretches(profile: CpuProfile, top = 5, framesEach = 6): BusyStretch[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const stretches: { start: number; end: number; at: number; ms: number; gap: number; running: number }[] = [];
  let t = 0;
  let runStart = -1;
  let runAt = 0;
  let runMs = 0;
  let runGap = 0;
  let runRunning = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = (profile.timeDeltas[i] ?? 0) / 1000;
    t += delta;
    const idle = byId.get(profile.samples[i] as number)?.callFrame.functionName === '(idle)';
    if (idle) {
      if (runStart >= 0)
        stretches.push({ start: runStart, end: i, at: runAt, ms: runMs, gap: runGap, running: runRunning });
      runStart = -1;
      continue;
    }
    if (runStart < 0) {
      runStart = i;
      runAt = t;
      runMs = 0;
      runGap = 0;
      runRunning = 0;
    } else {
      runMs += delta;
      runGap = Math.max(runGap, delta);
      if (delta <= GAP_MS) runRunning += delta;
    }
  }
  if (runStart >= 0)
    stretches.push({
      start: runStart,
      end: profile.samples.length,
      at: runAt,
      ms: runMs,
      gap: runGap,
      running: runRunning,
    });
  stretches.sort((a, b) => b.running - a.running);
  return stretches.slice(0, top).map((s) => {
    const self = new Map<string, number>();
    for (let i = s.start + 1; i < s.end; i++) {
      const node = byId.get(profile.samples[i] as number);
      if (!node) continue;
      const name = frameName(node);
      self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
    }
    const heaviest = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, framesEach);
    return {
      atMs: Math.round(s.at),
      ms: Math.round(s.ms * 10) / 10,
      maxGapMs: Math.round(s.gap * 10) / 10,
      runningMs: Math.round(s.running * 10) / 10,
      top: heaviest.map(([frame, ms]) => ({ frame, ms: Math.round(ms * 10) / 10 })),
    };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '5' } },
  });
  const target = positionals[0];
  if (!target) throw new Error('usage: bench/longest-tasks.ts FILE.cpuprofile|DIR [--top N]');
  const files = statSync(target).isDirectory()
    ? readdirSync(target)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(target, f))
    : [target];
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    process.stdout.write(`${file}\n`);
    for (const s of busyStretches(profile, Number(values.top))) {
      process.stdout.write(
        `  ${s.runningMs} ms running (${s.ms} ms busy, longest gap ${s.maxGapMs} ms) at +${(s.atMs / 1000).toFixed(1)} s\n`,
      );
      for (const f of s.top) process.stdout.write(`      ${String(f.ms).padStart(7)} ms  ${f.frame}\n`);
    }
  }
}
