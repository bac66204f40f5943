// The error model decides what happens after a failure: a failing backend is
// retried with back-off on the same client (its credentials and caches are
// kept), and a spec error waits for the spec to change, which is acted on at
// once even while the object backs off.
import { expect } from 'chai';
import { renameSync } from 'node:fs';
import { API_VERSION } from '../../../src/api/types.js';
import { sleep } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getSecret,
  readyOf,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

/** The sum of a counter's samples whose labels include every given pair. */
function counter(metrics: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('the error model: what a failure leads to', function () {
  this.timeout(90_000);
  let operator: RunningOperator;
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('errors');
  const client = () => adminClient(sharedCluster());

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('app/cfg', { password: 'pw-1' });
    await fixture.store.put('list/alpha', { v: 'a' });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('a failing backend is retried with back-off on the same client: no reconnect per failure', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'flaky' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        data: [{ secretKey: 'password', remoteRef: { key: 'app/cfg', property: 'password' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'flaky', (d) => d.password === 'pw-1');
    const logsBefore = operator.logs.length;
    const connectsBefore = counter(await operator.scrape(), 'secretsync_provider_requests_total', {
      provider: 'local',
      operation: 'connect',
    });
    renameSync(fixture.dir, `${fixture.dir}.away`);
    let failuresDuring: number;
    let connectsDuring: number;
    try {
      await waitForReady(client(), namespace, 'flaky', 'False', 'ProviderError');
      // Long enough for several retries: 1 s, 2 s, 4 s (with jitter) after the first failure.
      await sleep(8_000);
      const metrics = await operator.scrape();
      failuresDuring = counter(metrics, 'secretsync_syncs_total', { result: 'error', reason: 'ProviderError' });
      connectsDuring = counter(metrics, 'secretsync_provider_requests_total', {
        provider: 'local',
        operation: 'connect',
      });
      expect(decoded(await getSecret(client(), namespace, 'flaky')).password, 'the Secret is kept').to.equal('pw-1');
    } finally {
      renameSync(`${fixture.dir}.away`, fixture.dir);
    }
    expect(failuresDuring, 'retried while failing').to.be.at.least(2);
    // Exponential back-off, not a retry every refresh (1 s): at most ~5 attempts in about 9 s.
    expect(failuresDuring, 'backing off').to.be.at.most(6);
    // Closed clients, by store: a ClusterSecretStore another test left behind (cluster-scoped, so this
    // operator sees it) may fail and reconnect meanwhile, and the connect metric has no store label.
    const closedBy = (logs: string[]) =>
      logs.filter((l) => l.includes('store client closed')).map((l) => JSON.parse(l) as { store: string; why: string });
    const ownStore = `ss/${namespace}/local`;
    expect(
      closedBy(operator.logs.slice(logsBefore)).filter((c) => c.store === ownStore),
      'the client was kept through the failures',
    ).to.deep.equal([]);
    // Each close of another store's client is followed by one connect at its next check (one may straddle the start).
    const othersClosed = closedBy(operator.logs.slice(logsBefore)).filter((c) => c.store !== ownStore).length;
    const othersReconnect = closedBy(operator.logs).some((c) => c.store !== ownStore);
    expect(connectsDuring - connectsBefore, 'connects: only other stores’ reconnects').to.be.at.most(
      othersClosed + (othersReconnect ? 1 : 0),
    );
    await waitForReady(client(), namespace, 'flaky', 'True', 'Synced', 30_000);
  });

  it('a spec error waits for the spec to change (no retries), and the fix is acted on at once', async () => {
    // Valid for JavaScript (\Z is a plain Z there), refused by RE2: reported as the spec's mistake, before any read.
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'bad-pattern' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        dataFrom: [{ find: { nameRegexp: '^list/alpha\\Z' } }],
      },
    });
    const failed = await waitForReady(client(), namespace, 'bad-pattern', 'False', 'InvalidSpec');
    expect(readyOf(failed)?.message).to.contain('nameRegexp');
    const first = counter(await operator.scrape(), 'secretsync_syncs_total', {
      result: 'error',
      reason: 'InvalidSpec',
    });
    await sleep(5_000);
    const later = counter(await operator.scrape(), 'secretsync_syncs_total', {
      result: 'error',
      reason: 'InvalidSpec',
    });
    expect(later - first, 'no retries of a spec error while the spec is unchanged').to.equal(0);
    expect(await getSecret(client(), namespace, 'bad-pattern')).to.equal(undefined);

    const started = Date.now();
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/bad-pattern`, {
      body: { spec: { dataFrom: [{ find: { nameRegexp: '^list/alpha$' } }] } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(client(), namespace, 'bad-pattern', (d) => d.list_alpha === 'a');
    expect(Date.now() - started, 'the spec change is acted on at once, not after a back-off').to.be.lessThan(5_000);
  });
});
