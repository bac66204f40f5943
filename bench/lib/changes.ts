// Change latency in one local-store namespace: spec edits and store changes
// (each followed by the force-sync annotation), timed from the edit to the
// moment a watch on the Secrets sees the new value. Shared by the scenarios
// that ask "how fast does a change land" under different conditions, and
// repeatable on the same objects (each round edits differently).
import { randomBytes } from 'node:crypto';
import { ANNOTATION_FORCE_SYNC } from '../../src/api/types.js';
import type { KubeObject } from '../../src/kube/client.js';
import type { BenchContext, Figures } from './context.js';
import { PROPERTIES, entryName, msName, msPath, type LocalFixture, type Progress } from './fixtures.js';
import { percentile, sleep } from './util.js';

type SecretObj = KubeObject & { data?: Record<string, string> };
const value = (s: SecretObj, key: string): string | undefined => {
  const b64 = s.data?.[key];
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
};

export interface ChangeTarget {
  namespace: string;
  fixture: LocalFixture;
  /** Its `secrets` informer delivers the updates the latencies end at. */
  progress: Progress;
  /** ManagedSecrets ms-0 … ms-(objects-1) exist, in sync, on entries app/entry-0 … . */
  objects: number;
}

export interface ChangeLatencies {
  spec: number[];
  store: number[];
  /** Changes whose value no watch event showed within the wait. */
  missed: number;
  /** The round a next measurement on the same objects starts at (so its spec edits are changes too). */
  nextRound: number;
}

/**
 * Makes `changes` changes, one every `paceMs`, in rounds over the objects: in
 * each round the first half of the objects get a spec edit (key "a" takes
 * property "b" in even rounds and "c" in odd ones, so every round is a real
 * change), the second half a new value of property "a" in the store followed
 * by the force-sync annotation. No object has two changes in flight: a round
 * waits for the one before it to land (or time out).
 */
export async function measureChanges(
  ctx: BenchContext,
  target: ChangeTarget,
  changes: number,
  paceMs: number,
  options: { firstRound?: number; waitMs?: number } = {},
): Promise<ChangeLatencies> {
  const { namespace, fixture, progress } = target;
  const half = Math.max(1, Math.floor(target.objects / 2));
  const perRound = Math.max(1, Math.min(changes, half * 2));
  const pending = new Map<string, { start: number; check: (s: SecretObj) => boolean; kind: 'spec' | 'store' }>();
  const result: ChangeLatencies = { spec: [], store: [], missed: 0, nextRound: options.firstRound ?? 0 };
  const observe = (s: SecretObj) => {
    const p = pending.get(s.metadata.name);
    if (!p || !p.check(s)) return;
    result[p.kind].push(Date.now() - p.start);
    pending.delete(s.metadata.name);
  };
  const off = progress.onSecretUpdate(observe);
  const patch = (name: string, body: object) =>
    ctx.kube.request('PATCH', `${msPath(namespace)}/${name}`, { contentType: 'application/merge-patch+json', body });
  try {
    let made = 0;
    for (let round = options.firstRound ?? 0; made < changes; round++) {
      const jobs: (() => Promise<void>)[] = [];
      for (let k = 0; k < perRound && made < changes; k++, made++) {
        // Alternate spec and store changes, over distinct objects.
        const i = Math.floor(k / 2) + (k % 2 === 0 ? 0 : half);
        if (i >= target.objects) continue;
        const name = msName(i);
        if (k % 2 === 0) {
          const property = round % 2 === 0 ? 'b' : 'c';
          jobs.push(async () => {
            pending.set(name, {
              start: Date.now(),
              kind: 'spec',
              check: (s) => value(s, 'a') !== undefined && value(s, 'a') === value(s, property),
            });
            await patch(name, {
              spec: {
                data: PROPERTIES.map((p) => ({
                  secretKey: p,
                  remoteRef: { key: entryName(i), property: p === 'a' ? property : p },
                })),
              },
            });
          });
        } else {
          const fresh = `changed-${i}-${randomBytes(8).toString('hex')}`;
          jobs.push(async () => {
            pending.set(name, { start: Date.now(), kind: 'store', check: (s) => value(s, 'a') === fresh });
            await fixture.store.patch(entryName(i), { a: fresh });
            await patch(name, { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: String(Date.now()) } } });
          });
        }
      }
      const inFlight: Promise<void>[] = [];
      for (const job of jobs) {
        inFlight.push(job());
        await sleep(paceMs);
      }
      await Promise.all(inFlight);
      const deadline = Date.now() + (options.waitMs ?? 60_000);
      while (pending.size > 0 && Date.now() < deadline) await sleep(20);
      result.missed += pending.size;
      pending.clear();
      result.nextRound = round + 1;
    }
    return result;
  } finally {
    off();
  }
}

/** p50/p95/p99/max of all changes, and p50/p99 of each kind, under `prefix`. */
export function latencyFigures(prefix: string, l: ChangeLatencies): Figures {
  const all = [...l.spec, ...l.store];
  return {
    [`${prefix}Changes`]: all.length + l.missed,
    [`${prefix}Missed`]: l.missed,
    [`${prefix}P50Ms`]: percentile(all, 50),
    [`${prefix}P95Ms`]: percentile(all, 95),
    [`${prefix}P99Ms`]: percentile(all, 99),
    [`${prefix}MaxMs`]: all.length > 0 ? Math.max(...all) : Number.NaN,
    [`${prefix}SpecP50Ms`]: percentile(l.spec, 50),
    [`${prefix}SpecP99Ms`]: percentile(l.spec, 99),
    [`${prefix}StoreP50Ms`]: percentile(l.store, 50),
    [`${prefix}StoreP99Ms`]: percentile(l.store, 99),
  };
}
