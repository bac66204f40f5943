// The `events` scenario (issue 15): what event-driven sync buys over polling.
// N ManagedSecrets over 100 local-store entries, refreshInterval 1h, the store
// watched (`events.watch`); 200 changes made one by one with the store's own
// put (what `secretsync store put` calls): change → Secret latency, backend
// reads per change, and backend reads at rest. Then the same N with
// refreshInterval 10s and no events: reads per hour at rest, and the latency a
// change waits for the next poll.
import { randomBytes } from 'node:crypto';
import type { KubeObject } from '../../src/kube/client.js';
import {
  OperatorProcess,
  benchNamespace,
  diffCounters,
  operatorCounters,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import {
  Progress,
  createManagedSecrets,
  entryName,
  localSpec,
  localStoreNamespace,
  msName,
  storePath,
  timeoutFor,
  type LocalFixture,
} from '../lib/fixtures.js';
import { percentile, round, sleep } from '../lib/util.js';

/** Distinct store entries the N ManagedSecrets read (each reads properties a, b, c of one). */
const KEYS = 100;
/** The polling side's refreshInterval, as the issue compares. */
const POLLING_INTERVAL = '10s';

type SecretObj = KubeObject & { data?: Record<string, string> };
const valueOf = (s: SecretObj, key: string): string | undefined => {
  const b64 = s.data?.[key];
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
};

interface Phase {
  namespace: string;
  fixture: LocalFixture;
  progress: Progress;
  operator: OperatorProcess;
  coldSyncSeconds: number;
  cleanup(): Promise<void>;
}

/** N ManagedSecrets over KEYS entries, the operator started, every one Ready. */
async function setUp(ctx: BenchContext, n: number, keys: number, mode: 'events' | 'polling'): Promise<Phase> {
  const namespace = benchNamespace(`events-${mode}`);
  ctx.log(`events (${mode}): ${keys} entries, ${n} ManagedSecrets in ${namespace}`);
  const fixture = await localStoreNamespace(ctx, namespace, keys);
  if (mode === 'events')
    await ctx.kube.request('PATCH', `${storePath(namespace)}/local`, {
      contentType: 'application/merge-patch+json',
      body: { spec: { provider: { local: { events: { watch: true } } } } },
    });
  await createManagedSecrets(ctx, namespace, n, (i) =>
    localSpec(i % keys, mode === 'events' ? '1h' : POLLING_INTERVAL),
  );
  const progress = await new Progress(ctx.kube, namespace).start();
  const operator = await OperatorProcess.start(ctx, { namespaces: [namespace] });
  const allReady = await progress.waitAll(n, timeoutFor(n));
  return {
    namespace,
    fixture,
    progress,
    operator,
    coldSyncSeconds: round((allReady - operator.startedAt) / 1000, 1),
    async cleanup() {
      await operator.stop();
      await progress.stop();
      fixture.cleanup();
    },
  };
}

/**
 * Changes entry `key` and resolves with the latency of every Secret that
 * reads it (from just before the put to a watch seeing the new value).
 */
async function timeChange(phase: Phase, n: number, keys: number, key: number, timeoutMs: number): Promise<number[]> {
  const users = new Set<string>();
  for (let i = key; i < n; i += keys) users.add(msName(i));
  const fresh = `changed-${key}-${randomBytes(8).toString('hex')}`;
  const latencies: number[] = [];
  const start = Date.now();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const off = phase.progress.onSecretUpdate((s) => {
    if (!users.has(s.metadata.name) || valueOf(s, 'a') !== fresh) return;
    users.delete(s.metadata.name);
    latencies.push(Date.now() - start);
    if (users.size === 0) done();
  });
  try {
    await phase.fixture.store.patch(entryName(key), { a: fresh });
    const timer = sleep(timeoutMs);
    await Promise.race([finished, timer]);
    if (users.size > 0) throw new Error(`${users.size} Secrets of entry ${key} did not follow within ${timeoutMs} ms`);
    return latencies;
  } finally {
    off();
  }
}

async function readsAtRest(phase: Phase, seconds: number): Promise<number> {
  const before = operatorCounters(await phase.operator.metrics());
  await sleep(seconds * 1000);
  return diffCounters(operatorCounters(await phase.operator.metrics()), before).providerReads;
}

/**
 * `--n` ManagedSecrets over min(100, N) entries; `changes` (200) changes with
 * events; reads at rest over min(60 s, refreshSeconds × intervals) per mode;
 * a tenth of the changes (at most 20) timed under polling.
 */
export async function eventsScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const keys = Math.min(KEYS, n);
  const changes = ctx.options.changes;
  const restSeconds = Math.min(60, ctx.options.refreshSeconds * ctx.options.intervals);
  const pollingChanges = Math.max(1, Math.min(20, Math.floor(changes / 10)));
  const figures: Figures = { keys, changes, restSeconds, pollingInterval: POLLING_INTERVAL };
  // Events: refreshInterval 1h, the store watched.
  const events = await setUp(ctx, n, keys, 'events');
  try {
    figures.eventsColdSyncSeconds = events.coldSyncSeconds;
    await sleep(2_000);
    const before = operatorCounters(await events.operator.metrics());
    const perSecret: number[] = [];
    const perChange: number[] = [];
    ctx.log(`events: ${changes} changes, one by one`);
    for (let c = 0; c < changes; c++) {
      const latencies = await timeChange(events, n, keys, c % keys, 30_000);
      perSecret.push(...latencies);
      perChange.push(Math.max(...latencies));
    }
    const counters = diffCounters(operatorCounters(await events.operator.metrics()), before);
    Object.assign(figures, {
      secretsPerChange: round(perSecret.length / changes, 1),
      p50Ms: percentile(perSecret, 50),
      p95Ms: percentile(perSecret, 95),
      p99Ms: percentile(perSecret, 99),
      maxMs: Math.max(...perSecret),
      lastSecretOfChangeP99Ms: percentile(perChange, 99),
      backendReadsPerChange: round(counters.providerReads / changes, 2),
      secretWritesPerChange: round(counters.secretWrites / changes, 2),
    });
    ctx.log(`events: p99 ${String(figures.p99Ms)} ms; at rest for ${restSeconds} s`);
    figures.eventsBackendReadsPerHourAtRest = round((await readsAtRest(events, restSeconds)) * (3600 / restSeconds), 1);
    figures.eventsPeakRssMiB = round(events.operator.peakRssMiB(), 1);
  } finally {
    await events.cleanup();
  }
  // Polling: refreshInterval 10s, no events.
  const polling = await setUp(ctx, n, keys, 'polling');
  try {
    figures.pollingColdSyncSeconds = polling.coldSyncSeconds;
    // Past the refreshes the cold sync's tail brings.
    await sleep(10_000);
    ctx.log(`polling: at rest for ${restSeconds} s`);
    figures.pollingBackendReadsPerHourAtRest = round(
      (await readsAtRest(polling, restSeconds)) * (3600 / restSeconds),
      1,
    );
    const perSecret: number[] = [];
    for (let c = 0; c < pollingChanges; c++) perSecret.push(...(await timeChange(polling, n, keys, c % keys, 60_000)));
    Object.assign(figures, {
      pollingChanges,
      pollingP50Ms: percentile(perSecret, 50),
      pollingP99Ms: percentile(perSecret, 99),
      pollingPeakRssMiB: round(polling.operator.peakRssMiB(), 1),
    });
  } finally {
    await polling.cleanup();
  }
  return figures;
}
