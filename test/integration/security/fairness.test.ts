// Threats: "out-rank / starve" and "exhaust by polling". One namespace's
// users can create as many ManagedSecrets as they like, point them at a store
// that hangs (every sync holds a worker until its deadline) or at keys that do
// not exist (every sync fails at once and is retried), and ask for a refresh
// every millisecond. Another namespace must not notice: its changes still land
// within a second. The fair queue (src/controller/workqueue.ts) serves
// namespaces in turn and caps the workers one namespace holds while others
// wait (--max-workers-per-namespace), the sync deadline (--sync-timeout)
// bounds how long a borrowed worker is held, and the refresh floor
// (--min-refresh-interval) bounds how often one ManagedSecret reads its
// backend, and says so in its Ready condition.
import { expect } from 'chai';
import { tmpdir } from 'node:os';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getSecret,
  readyOf,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';
import { waitFor } from '../../../tools/testenv/index.js';
import {
  awsCredsAuth,
  counterSum,
  createAwsCreds,
  createStore,
  hangingTcpEndpoint,
  inPool,
} from './tenancy-helpers.js';

/** ManagedSecrets on a store that never answers: each sync holds a worker until the sync deadline. */
const HANGING = 500;
/** ManagedSecrets naming keys that do not exist: each sync fails at once and is retried with back-off. */
const MISSING = 500;
/** ManagedSecrets asking for a refresh every millisecond. */
const EAGER = 20;
/** Changes measured in the quiet namespace, one after the other: 100, so that p99 is not simply the worst one. */
const CHANGES = 100;
/**
 * Workers (the operator's default is 16), half of them for one namespace while others wait. Few, so that
 * the noisy namespace has every one of them busy; more only add the noisy namespace's CPU to the
 * measurement on a small machine.
 */
const CONCURRENCY = 4;
/** Short, so that the test is short; a worker borrowed by the noisy namespace is held at most this long. */
const SYNC_TIMEOUT_MS = 500;
/** A change that has not landed after this long is counted as starved (and ends the measurement). */
const STARVED_MS = 15_000;

const percentile = (samples: number[], p: number): number => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Infinity;
};

describe('security: a noisy namespace cannot starve a quiet one', function () {
  this.timeout(300_000);
  const quiet = uniqueName('sec-quiet');
  const noisy = uniqueName('sec-noisy');
  const client = () => adminClient(sharedCluster());
  let quietStore: LocalStoreFixture | undefined;
  let noisyStore: LocalStoreFixture | undefined;
  let hanging: Awaited<ReturnType<typeof hangingTcpEndpoint>> | undefined;
  let operator: RunningOperator | undefined;
  let generation = 0;

  /**
   * Changes the quiet ManagedSecret's spec CHANGES times, one after the
   * other, and measures how long each takes to reach its Secret. Stops early
   * at a change that does not land within STARVED_MS.
   */
  async function measureQuietChanges(): Promise<number[]> {
    const samples: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const key = `k${++generation}`;
      const started = Date.now();
      await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${quiet}/managedsecrets/app`, {
        body: { spec: { data: [{ secretKey: key, remoteRef: { key: 'app', property: 'password' } }] } },
        contentType: 'application/merge-patch+json',
      });
      try {
        await waitFor(
          `quiet change ${i + 1} to land`,
          async () => ((await getSecret(client(), quiet, 'app'))?.data?.[key] !== undefined ? true : undefined),
          STARVED_MS,
          20,
        );
      } catch {
        samples.push(Infinity);
        break;
      }
      samples.push(Date.now() - started);
      // A quiet namespace is quiet: changes are apart, so each one finds its namespace idle.
      await new Promise((r) => setTimeout(r, 50));
    }
    return samples;
  }

  before(async () => {
    for (const ns of [quiet, noisy]) await ensureNamespace(client(), ns);
    quietStore = await createLocalStore(client(), quiet);
    await quietStore.store.put('app', { password: 'quiet' });
    await createSecretStore(client(), quiet, 'local', quietStore.dir);
    await createManagedSecret(client(), quiet, {
      metadata: { name: 'app' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1h',
        data: [{ secretKey: 'k0', remoteRef: { key: 'app', property: 'password' } }],
      },
    });

    // The noisy namespace: a store that hangs, a store with few keys, and many ManagedSecrets.
    hanging = await hangingTcpEndpoint();
    await createAwsCreds(client(), noisy);
    await createStore(client(), noisy, 'hanging', {
      awsSecretsManager: { region: sharedMoto().region, endpoint: hanging.url, auth: awsCredsAuth() },
    });
    noisyStore = await createLocalStore(client(), noisy);
    for (let i = 0; i < EAGER; i++) await noisyStore.store.put(`eager-${i}`, { v: String(i) });
    await createSecretStore(client(), noisy, 'local', noisyStore.dir);
    const specs: { name: string; spec: ManagedSecret['spec'] }[] = [];
    for (let i = 0; i < HANGING; i++)
      specs.push({
        name: `hang-${i}`,
        spec: { storeRef: { name: 'hanging' }, data: [{ secretKey: 'v', remoteRef: { key: `hang/${i}` } }] },
      });
    for (let i = 0; i < MISSING; i++)
      specs.push({
        name: `missing-${i}`,
        spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'v', remoteRef: { key: `missing-${i}` } }] },
      });
    for (let i = 0; i < EAGER; i++)
      specs.push({
        name: `eager-${i}`,
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1ms',
          data: [{ secretKey: 'v', remoteRef: { key: `eager-${i}`, property: 'v' } }],
        },
      });
    await inPool(specs, 16, (s) => createManagedSecret(client(), noisy, { metadata: { name: s.name }, spec: s.spec }));
  });

  afterEach(async () => {
    const stopping = operator?.stop();
    operator = undefined;
    // Stopping cancels the syncs in flight, hanging ones included: an operator that cannot stop fails here.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      stopping,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('the operator did not stop within 30 s')), 30_000);
      }),
    ]).finally(() => clearTimeout(timer));
  });

  after(async () => {
    await hanging?.close();
    quietStore?.cleanup();
    noisyStore?.cleanup();
  });

  const operatorOptions = (namespaces: string[]) => ({
    namespaces,
    concurrency: CONCURRENCY,
    maxWorkersPerNamespace: 0,
    syncTimeoutMs: SYNC_TIMEOUT_MS,
    // The worst case: an admin who turned the refresh floor off. Half of the workers per namespace (the default).
    minRefreshIntervalMs: 0,
    storePolicy: { allowedEndpoints: [hanging?.url ?? ''], localStoreRoot: tmpdir() },
  });

  it('a change in the quiet namespace lands within 1 s (p99 of 100) beside 1,020 noisy ManagedSecrets', async () => {
    // Baseline: the quiet namespace alone.
    operator = await startOperator(sharedCluster(), operatorOptions([quiet]));
    await waitForSecretData(client(), quiet, 'app', (d) => d.k0 === 'quiet', 20_000);
    const alone = await measureQuietChanges();
    await operator.stop();

    // The same, beside the noisy namespace, once its failures are under way.
    operator = await startOperator(sharedCluster(), operatorOptions([quiet, noisy]));
    const metrics = operator.metrics;
    // The initial list is in name order: the hanging ones (hang-*) come first and hold every worker.
    await waitFor(
      'the noisy namespace to hold the workers (hanging syncs timing out)',
      async () =>
        (await counterSum(metrics.syncs, { result: 'error', reason: 'DeadlineExceeded' })) >= CONCURRENCY
          ? true
          : undefined,
      30_000,
      100,
    ).catch(() => undefined); // The code before the sync deadline never gets there (its syncs hang): measure anyway.
    const failuresBefore = await counterSum(metrics.syncs, { result: 'error' });
    const beside = await measureQuietChanges();
    const failuresDuring = (await counterSum(metrics.syncs, { result: 'error' })) - failuresBefore;
    const hangingConnections = hanging?.connections() ?? 0;

    const report = {
      maxAloneMs: percentile(alone, 100),
      maxBesideMs: percentile(beside, 100),
      p50AloneMs: percentile(alone, 50),
      p99AloneMs: percentile(alone, 99),
      p50BesideMs: percentile(beside, 50),
      p99BesideMs: percentile(beside, 99),
      noisyFailuresDuringMeasurement: failuresDuring,
      hangingConnections,
    };
    console.log(`      fairness: ${JSON.stringify(report)}`);
    expect(
      beside.filter((ms) => ms !== Infinity).length,
      `quiet changes that landed (the next one was still waiting after ${STARVED_MS} ms)`,
    ).to.equal(CHANGES);
    expect(report.p99BesideMs, 'p99 beside the noisy namespace').to.be.at.most(1_000);
    // The noise was real while we measured: the noisy namespace kept failing.
    expect(failuresDuring, 'noisy failures while the quiet changes were measured').to.be.greaterThan(20);
    // Relative to the quiet namespace alone: the time to get a worker plus the time of the sync. A worker
    // the noisy namespace borrowed while the quiet one was idle is back within one sync deadline (workers
    // are not pre-empted, and the queue keeps none in reserve), so that term is the deadline. The sync
    // itself then runs beside the noisy namespace's syncs, in the same process and against the same API
    // server: measured 2 to 2.5 times slower at the tail on a shared 2-core machine, hence 3 times. The
    // code before the fair queue does not get a single change through (see the first assertion).
    expect(report.p99BesideMs, 'p99 beside vs alone').to.be.at.most(3 * report.p99AloneMs + SYNC_TIMEOUT_MS);
  });

  it('refreshInterval 1ms is refreshed no more often than --min-refresh-interval, and its Ready condition says so', async () => {
    const floorMs = 3_000;
    const ns = uniqueName('sec-floor');
    await ensureNamespace(client(), ns);
    const fixture = await createLocalStore(client(), ns);
    try {
      await fixture.store.put('eager', { v: '1' });
      await createSecretStore(client(), ns, 'local', fixture.dir);
      await createManagedSecret(client(), ns, {
        metadata: { name: 'eager' },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1ms',
          data: [{ secretKey: 'v', remoteRef: { key: 'eager', property: 'v' } }],
        },
      });
      operator = await startOperator(sharedCluster(), {
        namespaces: [ns],
        minRefreshIntervalMs: floorMs,
        storePolicy: { allowedEndpoints: [], localStoreRoot: tmpdir() },
      });
      const ms = await waitForReady(client(), ns, 'eager', 'True');
      const reads = () =>
        counterSum(operator?.metrics.providerRequests ?? { get: async () => ({ values: [] }) }, {
          provider: 'local',
          operation: /^(getValue|getValues|getProperties|find)$/,
        });
      // A window of three floors: at most one read per floor, and one at either edge.
      const windowMs = 3 * floorMs;
      const first = await reads();
      await new Promise((r) => setTimeout(r, windowMs));
      const count = (await reads()) - first;
      console.log(`      refresh floor: ${count} backend reads in ${windowMs} ms (floor ${floorMs} ms)`);
      expect(count, 'backend reads in the window').to.be.at.most(windowMs / floorMs + 1);
      // And it does refresh (the floor is a floor, not a stop).
      expect(count, 'backend reads in the window').to.be.at.least(windowMs / floorMs - 1);
      expect(readyOf(ms)?.message).to.match(
        /refreshInterval 1ms is below the operator's minimum refresh interval; refreshing every 3s/,
      );
      expect(await getSecret(client(), ns, 'eager')).to.not.equal(undefined);
    } finally {
      fixture.cleanup();
    }
  });
});
