import { expect } from 'chai';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import { main } from '../../../src/cli/main.js';
import { captureIo } from '../../unit/helpers/index.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  listEvents,
  startOperator,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

const rotated = (ms: ManagedSecret) => ms.status?.conditions?.find((c) => c.type === 'Rotated');

describe('rotation with the local store', function () {
  this.timeout(120_000);
  let operator: RunningOperator;
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('rot');
  const client = () => adminClient(sharedCluster());
  /** Every value the store or the Secret held, for the no-repeat and leak checks. */
  const seen = new Set<string>();

  const rotatingSecret = (name: string, key: string, interval: string) => ({
    metadata: { name },
    spec: {
      storeRef: { name: 'local' },
      refreshInterval: '1h',
      data: [
        { secretKey: 'password', remoteRef: { key, property: 'password' } },
        { secretKey: 'user', remoteRef: { key, property: 'user' } },
      ],
      rotation: {
        interval,
        generator: { password: { length: 24, minimum: { digits: 2 }, exclude: '0O1lI' } },
        remoteRef: { key, property: 'password' },
        keepVersions: 3,
      },
    },
  });

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('rotates a password on a short interval: new values in the store and the Secret, keepVersions kept, no repeats', async () => {
    await fixture.store.put('db/rot', { user: 'app', password: 'initial-password' });
    await createManagedSecret(client(), namespace, rotatingSecret('db', 'db/rot', '2s'));
    const byVersion = new Map<number, string>();
    const versions = await waitFor(
      'four rotations',
      async () => {
        const h = await fixture.store.history('db/rot');
        const latest = await fixture.store.get('db/rot');
        byVersion.set(latest.version, latest.properties.password as string);
        return (h.at(-1)?.version ?? 0) >= 5 ? h : undefined;
      },
      // Eight seconds of rotations; the slack is for a loaded CI machine (timings are not what this asserts).
      90_000,
      200,
    );
    // keepVersions 3: older versions pruned.
    expect(versions.length).to.be.at.most(3);
    const latest = await fixture.store.get('db/rot');
    expect(latest.properties.user).to.equal('app');
    expect(latest.properties.password).to.match(/^[^0O1lI]{24}$/);
    for (const v of versions)
      byVersion.set(v.version, (await fixture.store.get('db/rot', v.version)).properties.password as string);
    const secret = await waitForSecretData(client(), namespace, 'db', (d) => d.password !== 'initial-password');
    seen.add(decoded(secret).password as string);
    const ms = await getManagedSecret(client(), namespace, 'db');
    expect(rotated(ms)?.status).to.equal('True');
    expect(ms.status?.lastRotationTime).to.be.a('string');
    expect(ms.status?.nextRotationTime).to.be.a('string');
    expect(ms.status?.rotationVersion).to.match(/^\d+$/);
    // Every version we saw holds its own value: none repeated, none the initial one.
    byVersion.delete(1);
    expect(byVersion.size).to.be.at.least(3);
    expect(new Set(byVersion.values()).size).to.equal(byVersion.size);
    expect([...byVersion.values()]).to.not.include('initial-password');
    for (const v of byVersion.values()) seen.add(v);
  });

  it('rotate-now (secretsync rotate) rotates exactly once; rollback pins the earlier version and the Secret returns to it', async () => {
    await fixture.store.put('app/rot', { user: 'svc', password: 'first' });
    await createManagedSecret(client(), namespace, rotatingSecret('app', 'app/rot', '1h'));
    // The first rotation happens at once (no lastRotationTime yet).
    const first = await waitFor(
      'the first rotation',
      async () => {
        const ms = await getManagedSecret(client(), namespace, 'app');
        return ms.status?.rotationVersion && !ms.status.rotationInProgress ? ms : undefined;
      },
      15_000,
    );
    const v1 = first.status?.rotationVersion as string;
    const before = decoded(await waitForSecretData(client(), namespace, 'app', (d) => d.password !== 'first'));
    seen.add(before.password as string);
    const historyBefore = await fixture.store.history('app/rot');

    const io = captureIo();
    const code = await main(
      ['node', 'secretsync', 'rotate', `${namespace}/app`, '--kubeconfig', sharedCluster().kubeconfigPath],
      io,
    );
    expect(code, io.errLines.join('\n')).to.equal(0);
    const after = await waitFor(
      'the manual rotation',
      async () => {
        const ms = await getManagedSecret(client(), namespace, 'app');
        return ms.status?.rotationVersion !== v1 && !ms.status?.rotationInProgress ? ms : undefined;
      },
      15_000,
    );
    const v2 = after.status?.rotationVersion as string;
    expect(Number(v2)).to.equal(Number(v1) + 1);
    const rotatedData = decoded(
      await waitForSecretData(client(), namespace, 'app', (d) => d.password !== before.password),
    );
    seen.add(rotatedData.password as string);
    await sleep(2_000);
    expect((await fixture.store.history('app/rot')).length).to.equal(historyBefore.length + 1);

    const rb = captureIo();
    const rbCode = await main(
      [
        'node',
        'secretsync',
        'rollback',
        `${namespace}/app`,
        '--to',
        v1,
        '--kubeconfig',
        sharedCluster().kubeconfigPath,
      ],
      rb,
    );
    expect(rbCode, rb.errLines.join('\n')).to.equal(0);
    expect(rb.outLines.join('\n')).to.contain('keys that change: password\n');
    expect(rb.outLines.join('\n')).to.not.contain(before.password as string);
    await waitForSecretData(client(), namespace, 'app', (d) => d.password === before.password, 10_000);
    const ms = await getManagedSecret(client(), namespace, 'app');
    expect(ms.spec.data?.map((d) => d.remoteRef?.version)).to.deep.equal([v1, undefined]);
  });

  it('a failed rotation (store unreachable) keeps the old value and sets Rotated=False with a reason', async () => {
    await fixture.store.put('fail/rot', { user: 'x', password: 'keep-me' });
    const { renameSync, rmSync, writeFileSync } = await import('node:fs');
    await createManagedSecret(client(), namespace, {
      ...rotatingSecret('failing', 'fail/rot', '1h'),
    });
    await waitFor(
      'the first rotation',
      async () => ((await getManagedSecret(client(), namespace, 'failing')).status?.rotationVersion ? true : undefined),
      15_000,
    );
    const good = decoded(await waitForSecretData(client(), namespace, 'failing', (d) => d.password !== 'keep-me'));
    seen.add(good.password as string);
    // A file where the directory was: the store can neither read nor (re)create it.
    renameSync(fixture.dir, `${fixture.dir}.away`);
    writeFileSync(fixture.dir, 'not a directory');
    try {
      await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/failing`, {
        body: { metadata: { annotations: { 'secretsync.io/rotate-now': 'now-1' } } },
        contentType: 'application/merge-patch+json',
      });
      const ms = await waitFor(
        'Rotated=False',
        async () => {
          const m = await getManagedSecret(client(), namespace, 'failing');
          return rotated(m)?.status === 'False' ? m : undefined;
        },
        15_000,
      );
      expect(rotated(ms)?.reason).to.equal('RotationFailed');
      expect(rotated(ms)?.message).to.contain('SecretStore');
      expect(decoded(await getSecret(client(), namespace, 'failing')).password).to.equal(good.password);
    } finally {
      rmSync(fixture.dir, { force: true });
      renameSync(`${fixture.dir}.away`, fixture.dir);
    }
    // Back: the same rotation (same token) finishes.
    const done = await waitFor(
      'the rotation to finish once the store is back',
      async () => {
        const m = await getManagedSecret(client(), namespace, 'failing');
        return rotated(m)?.status === 'True' && !m.status?.rotationInProgress ? m : undefined;
      },
      40_000,
      250,
    );
    expect(done.status?.rotationVersion).to.equal('3');
    const now = decoded(await waitForSecretData(client(), namespace, 'failing', (d) => d.password !== good.password));
    seen.add(now.password as string);
  });

  it('never lets a generated value reach the logs, Events or status', async () => {
    const events = JSON.stringify(await listEvents(client(), namespace));
    const statuses = JSON.stringify(
      (await client().list(`/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`)).items.map(
        (i) => (i as { status?: unknown }).status,
      ),
    );
    const logs = operator.logs.join('\n');
    const metrics = await operator.scrape();
    expect(logs).to.contain('rotated');
    expect(events).to.contain('Rotated');
    expect(metrics).to.match(/secretsync_rotations_total\{result="success"\} [1-9]/);
    expect(metrics).to.match(new RegExp(`secretsync_rotation_next_due_seconds\\{namespace="${namespace}"\\}`));
    expect(seen.size).to.be.at.least(5);
    for (const value of seen) {
      for (const form of [value, Buffer.from(value).toString('base64')]) {
        expect(logs).to.not.contain(form);
        expect(events).to.not.contain(form);
        expect(statuses).to.not.contain(form);
        expect(metrics).to.not.contain(form);
      }
    }
  });
});
