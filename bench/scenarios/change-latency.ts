import { randomBytes } from 'node:crypto';
import { ANNOTATION_FORCE_SYNC } from '../../src/api/types.js';
import type { KubeObject } from '../../src/kube/client.js';
import type { BenchContext, Figures } from '../lib/context.js';
import { PROPERTIES, entryName, msName, msPath } from '../lib/fixtures.js';
import { percentile, round, sleep } from '../lib/util.js';
import { coldSync, type ColdSync } from './common.js';

type SecretObj = KubeObject & { data?: Record<string, string> };
const value = (s: SecretObj, key: string): string | undefined => {
  const b64 = s.data?.[key];
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
};

/**
 * 6. change-latency: with N in sync, 200 ManagedSecrets get a spec edit and
 * 200 store entries change (each followed by the force-sync annotation on its
 * ManagedSecret), one change every `paceMs`; latency is from the edit to the
 * moment a watch on the Secrets sees the new value.
 */
export async function changeLatencyScenario(ctx: BenchContext, n: number, paceMs = 25): Promise<Figures> {
  const run = await coldSync(ctx, 'change-latency', n);
  try {
    const figures = await measureChangeLatency(ctx, run, n, paceMs);
    const { peakRssMiB } = await run.operator.stop();
    return { ...figures, peakRssMiB: round(peakRssMiB, 1) };
  } finally {
    await run.cleanup();
  }
}

/**
 * The changes of change-latency against a cold sync already done (its
 * operator running): shared with the `scale` scenario, which measures them at
 * N = 50,000 without a cold sync of its own.
 */
export async function measureChangeLatency(ctx: BenchContext, run: ColdSync, n: number, paceMs = 25): Promise<Figures> {
  const changes = Math.max(1, Math.min(ctx.options.changes, Math.floor(n / 2)));
  const pending = new Map<
    string,
    { start: number; written?: number; check: (s: SecretObj) => boolean; kind: 'spec' | 'store' }
  >();
  const latencies: Record<'spec' | 'store', number[]> = { spec: [], store: [] };
  /** Store changes from the moment the store write returned (the change exists in the backend). */
  const fromWritten: number[] = [];
  /** How long the benchmark's own store writes took (lock, journal, fsyncs; now and then a manifest fold). */
  const storeWrites: number[] = [];
  const observe = (s: SecretObj) => {
    const p = pending.get(s.metadata.name);
    if (!p || !p.check(s)) return;
    const now = Date.now();
    latencies[p.kind].push(now - p.start);
    if (p.written !== undefined) fromWritten.push(now - p.written);
    pending.delete(s.metadata.name);
  };
  const stopObserving = run.progress.onSecretUpdate(observe);
  try {
    const jobs: (() => Promise<void>)[] = [];
    for (let i = 0; i < changes; i++) {
      // A spec edit: key "a" now takes property "b" of the same entry.
      jobs.push(async () => {
        const name = msName(i);
        pending.set(name, { start: Date.now(), kind: 'spec', check: (s) => value(s, 'a') === value(s, 'b') });
        await ctx.kube.request('PATCH', `${msPath(run.namespace)}/${name}`, {
          contentType: 'application/merge-patch+json',
          body: {
            spec: {
              data: PROPERTIES.map((p) => ({
                secretKey: p,
                remoteRef: { key: entryName(i), property: p === 'a' ? 'b' : p },
              })),
            },
          },
        });
      });
      // A store change, then the force-sync annotation that asks for it now.
      const j = n - 1 - i;
      jobs.push(async () => {
        const name = msName(j);
        const fresh = `changed-${j}-${randomBytes(8).toString('hex')}`;
        const change = { start: Date.now(), written: undefined as number | undefined, kind: 'store' as const };
        pending.set(name, { ...change, check: (s) => value(s, 'a') === fresh });
        await run.fixture.store.patch(entryName(j), { a: fresh });
        const written = Date.now();
        storeWrites.push(written - change.start);
        const entry = pending.get(name);
        if (entry) entry.written = written;
        await ctx.kube.request('PATCH', `${msPath(run.namespace)}/${name}`, {
          contentType: 'application/merge-patch+json',
          body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: String(Date.now()) } } },
        });
      });
    }
    ctx.log(`change-latency: ${changes} spec edits and ${changes} store changes, one every ${paceMs} ms`);
    const inFlight: Promise<void>[] = [];
    for (const job of jobs) {
      inFlight.push(job());
      await sleep(paceMs);
    }
    await Promise.all(inFlight);
    const deadline = Date.now() + 60_000;
    while (pending.size > 0 && Date.now() < deadline) await sleep(50);
    const all = [...latencies.spec, ...latencies.store];
    return {
      changes: changes * 2,
      paceMs,
      missed: pending.size,
      p50Ms: percentile(all, 50),
      p95Ms: percentile(all, 95),
      p99Ms: percentile(all, 99),
      maxMs: Math.max(...all),
      specP50Ms: percentile(latencies.spec, 50),
      specP99Ms: percentile(latencies.spec, 99),
      storeP50Ms: percentile(latencies.store, 50),
      storeP99Ms: percentile(latencies.store, 99),
      // The operator's part of a store change: from the write's return to the Secret (the figures above count
      // the benchmark's own store write too).
      storeFromWrittenP50Ms: percentile(fromWritten, 50),
      storeFromWrittenP99Ms: percentile(fromWritten, 99),
      // Spec edits and store changes from the write's return: the operator's change latency.
      operatorP99Ms: percentile([...latencies.spec, ...fromWritten], 99),
      storeWriteP50Ms: percentile(storeWrites, 50),
      storeWriteP99Ms: percentile(storeWrites, 99),
      storeWriteMaxMs: Math.max(...storeWrites),
    };
  } finally {
    stopObserving();
  }
}
