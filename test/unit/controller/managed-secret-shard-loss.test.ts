// A sync stopped because this replica lost the ManagedSecret's shard is not a
// failure: the reconciler must drop the pass quietly (a debug line; no warning,
// no status write, no Event, no failure metric) even when the backend call it
// interrupted fails with a plain AbortError rather than one of our errors. The
// same fake, stopped by the sync deadline instead, must still be recorded as
// DeadlineExceeded: that is what shows the quiet case is not just unobserved.
// The same harness shows a status write that failed being looked at again.
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { NotShardOwnerError, SecretsyncError } from '../../../src/api/errors.js';
import { DEFAULT_LIMITS } from '../../../src/api/limits.js';
import { API_VERSION, type AnyStore, type ManagedSecret, type RemoteRef } from '../../../src/api/types.js';
import type { ClusterCache } from '../../../src/controller/caches.js';
import { CpuTurns } from '../../../src/controller/cpu-turns.js';
import type { EventRecorder } from '../../../src/controller/events.js';
import { FetchCache } from '../../../src/controller/fetch-cache.js';
import { queueKey } from '../../../src/controller/keys.js';
import { ManagedSecretReconciler, type ManagedSecretDeps } from '../../../src/controller/managed-secret-reconciler.js';
import type { RolloutRestarter } from '../../../src/controller/rollout.js';
import type { RotationStep } from '../../../src/controller/rotation-step.js';
import type { Recorded, StatusWriter, SyncRecord } from '../../../src/controller/status.js';
import type { StoreClients } from '../../../src/controller/store-clients.js';
import type { WorkQueue } from '../../../src/controller/workqueue.js';
import type { KubeClient } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import type { CallOptions, ProviderClient } from '../../../src/providers/provider.js';

const SHARD = 3;

const store: AnyStore = {
  apiVersion: API_VERSION,
  kind: 'SecretStore',
  metadata: { name: 'backend', namespace: 'team' },
  spec: { provider: { local: { path: '/x', masterKeySecretRef: { name: 'mk' } } } },
};

const ms: ManagedSecret = {
  apiVersion: API_VERSION,
  kind: 'ManagedSecret',
  metadata: { name: 'db', namespace: 'team', uid: 'u-1', generation: 1 },
  spec: {
    storeRef: { name: 'backend' },
    refreshInterval: '1h',
    data: [{ secretKey: 'password', remoteRef: { key: 'db/password' } }],
  },
};

/** A backend read that never answers, and fails the way SDKs do when aborted: a plain AbortError, not ours. */
function hangingProvider(onCall: () => void): ProviderClient {
  const hang = (opts?: CallOptions) =>
    new Promise<never>((_, reject) => {
      onCall();
      opts?.signal?.addEventListener(
        'abort',
        () => reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' })),
        { once: true },
      );
    });
  return {
    getValue: (_ref: RemoteRef, opts?: CallOptions) => hang(opts),
    getProperties: (_key, _version, opts) => hang(opts),
    find: (_query, opts) => hang(opts),
    check: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

/** A backend that refuses every read with a terminal error of ours (no retry of its own), counting the reads. */
function refusingProvider(reads: { n: number }): ProviderClient {
  const refuse = () => {
    reads.n++;
    return Promise.reject(new SecretsyncError('DecryptFailed', 'terminal', 'could not decrypt db/password'));
  };
  return {
    getValue: refuse,
    getProperties: refuse,
    find: refuse,
    check: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

function harness(syncTimeoutMs: number, opts: { provider?: ProviderClient; recorded?: () => Recorded } = {}) {
  const lines: { level: string; message: string; reason?: string }[] = [];
  const log = createLogger(
    'debug',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    }),
  );
  // Each harness its own copy: a status write lands in it.
  const object = structuredClone(ms);
  const statusWrites: SyncRecord[] = [];
  const events: { type: string; reason: string }[] = [];
  const queue = { cancelled: [] as string[], retried: [] as string[] };
  const shard = new AbortController();
  let backendCalled: () => void = () => undefined;
  const backendReached = new Promise<void>((resolve) => (backendCalled = resolve));
  const metrics = new Metrics();
  const deps: ManagedSecretDeps = {
    client: {} as KubeClient,
    caches: {
      managedSecrets: { get: (key: string) => (key === 'team/db' ? object : undefined) },
      secrets: { get: () => undefined },
      resolveStore: () => ({ store, storeKey: 'ss/team/backend' }),
    } as unknown as ClusterCache,
    clients: {
      get: () => Promise.resolve(opts.provider ?? hangingProvider(backendCalled)),
      afterError: () => undefined,
    } as unknown as StoreClients,
    fetchCache: new FetchCache(),
    status: {
      recordSync: (written: ManagedSecret, record: SyncRecord) => {
        statusWrites.push(record);
        const result = opts.recorded?.() ?? 'written';
        // What the real writer leaves in the cached object once the patch is in.
        if (result === 'written')
          written.status = {
            observedGeneration: written.metadata.generation,
            conditions: [{ ...record.ready, lastTransitionTime: new Date().toISOString() }],
            syncedVersion: record.syncedVersion,
          };
        return Promise.resolve(result);
      },
    } as unknown as StatusWriter,
    events: {
      emit: (_target: unknown, type: string, reason: string) => events.push({ type, reason }),
    } as unknown as EventRecorder,
    rotation: { nextLookMs: () => undefined } as unknown as RotationStep,
    restarter: {} as RolloutRestarter,
    queue: {
      cancel: (key: string) => queue.cancelled.push(key),
      forget: () => undefined,
      add: () => undefined,
      addAfter: () => undefined,
      addRateLimited: (key: string) => queue.retried.push(key),
    } as unknown as WorkQueue,
    log,
    metrics,
    cpu: new CpuTurns(),
    hmacKey: () => Buffer.alloc(32, 7),
    eventTarget: (m) => ({ apiVersion: m.apiVersion, kind: m.kind, name: m.metadata.name }),
    stopSignal: new AbortController().signal,
    settings: { syncTimeoutMs, minRefreshIntervalMs: 0, limits: DEFAULT_LIMITS },
    sharding: { shardOf: () => SHARD, signalOf: () => shard.signal },
  };
  const failures = async () =>
    (await metrics.syncs.get()).values.filter((v) => v.labels.result === 'error').reduce((n, v) => n + v.value, 0);
  return {
    reconciler: new ManagedSecretReconciler(deps),
    lines,
    statusWrites,
    events,
    queue,
    shard,
    backendReached,
    failures,
  };
}

describe('ManagedSecretReconciler: a sync stopped by shard loss', () => {
  const key = queueKey.managedSecret('team', 'db');

  it('is dropped with a debug line: no warning, no status write, no Event, no failure metric', async () => {
    const h = harness(60_000);
    const done = h.reconciler.reconcile(key);
    await h.backendReached;
    // The shard fence's signal fires as the coordinator's does when a tenure ends.
    h.shard.abort(new NotShardOwnerError(SHARD));
    await done;

    expect(h.lines.filter((l) => l.level === 'warn' || l.level === 'error')).to.deep.equal([]);
    expect(h.lines.some((l) => /did not finish/.test(JSON.stringify(l)))).to.equal(false);
    expect(h.lines.filter((l) => l.level === 'debug').map((l) => l.message)).to.include(
      'shard lost during a sync; left to its new owner',
    );
    expect(h.statusWrites).to.deep.equal([]);
    expect(h.events).to.deep.equal([]);
    expect(await h.failures()).to.equal(0);
    // Left to the shard's new owner: not retried here.
    expect(h.queue.cancelled).to.include(key);
    expect(h.queue.retried).to.deep.equal([]);
  });

  it('is told apart from the sync deadline, which the same backend failure is recorded as', async () => {
    const h = harness(50);
    await h.reconciler.reconcile(key);

    expect(h.statusWrites.map((r) => r.ready.reason)).to.deep.equal(['DeadlineExceeded']);
    expect(h.events).to.deep.equal([{ type: 'Warning', reason: 'DeadlineExceeded' }]);
    expect(await h.failures()).to.equal(1);
    expect(h.lines.filter((l) => l.level === 'warn').map((l) => l.reason)).to.deep.equal(['DeadlineExceeded']);
    expect(h.queue.retried).to.deep.equal([key]);
  });
});

describe('ManagedSecretReconciler: a status write that failed', () => {
  const key = queueKey.managedSecret('team', 'db');

  it('is looked at again with back-off until the record is in, even after a terminal failure', async () => {
    const reads = { n: 0 };
    const results: Recorded[] = ['failed', 'failed', 'written'];
    const h = harness(60_000, { provider: refusingProvider(reads), recorded: () => results.shift() ?? 'unchanged' });
    await h.reconciler.reconcile(key);
    // A terminal failure waits for the next refresh, unless its record did not land: then it is retried.
    expect(h.statusWrites.map((r) => r.ready.reason)).to.deep.equal(['DecryptFailed']);
    expect(h.queue.retried).to.deep.equal([key]);
    await h.reconciler.reconcile(key);
    await h.reconciler.reconcile(key);
    expect(h.statusWrites).to.have.length(3);
    expect(h.queue.retried).to.deep.equal([key, key]);
    expect(reads.n).to.equal(3);
    // Recorded: the terminal failure waits for its refresh again (a pass that comes anyway reads, as before).
    await h.reconciler.reconcile(key);
    expect(h.queue.retried).to.deep.equal([key, key]);
  });
});
