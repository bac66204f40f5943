// The bounds on what a namespace controls, each hit once with a small
// operator setting: template source (--max-template-bytes), rendered or
// fetched data of one Secret (--max-secret-bytes), keys in one Secret
// (--max-keys-per-secret), entries one find may match (--max-find-entries)
// and one value (--max-value-bytes). Each ManagedSecret first syncs within
// its bound, then its spec or its store grows past it: Ready=False with the
// bound's own reason, a Warning Event with it, the Secret exactly as it was
// (never written with the oversized data), and no value in any message.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import type { SecretObject } from '../../../src/secrets/desired.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { GiveUpError } from '../../../tools/testenv/processes.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  readyOf,
  startOperator,
  waitForReady,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';
import { eventsAbout } from './input-fixtures.js';

const LIMITS = {
  maxTemplateBytes: 256,
  maxSecretBytes: 4096,
  maxKeysPerSecret: 5,
  maxFindEntries: 3,
  maxValueBytes: 1024,
};

/** A value of `bytes` bytes that starts with a marker no message may contain. */
function valueOf(marker: string, bytes: number): string {
  return (marker + randomBytes(bytes).toString('hex')).slice(0, bytes);
}

describe('security: the bounds on templates, Secrets, keys, find entries and values', function () {
  this.timeout(120_000);
  const client = () => adminClient(sharedCluster());
  const namespace = uniqueName('bounds');
  const marker = `secret-${randomBytes(6).toString('hex')}`;
  let fixture: LocalStoreFixture;
  let operator: RunningOperator;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace], limits: LIMITS });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  /** Creates the ManagedSecret (refreshed every second) and waits until it has written its Secret. */
  async function synced(name: string, spec: Omit<ManagedSecret['spec'], 'storeRef'>): Promise<SecretObject> {
    await createManagedSecret(client(), namespace, {
      metadata: { name },
      spec: { storeRef: { name: 'local' }, refreshInterval: '1s', ...spec },
    });
    await waitForReady(client(), namespace, name, 'True', 'Synced', 20_000);
    return (await getSecret(client(), namespace, name)) as SecretObject;
  }

  /**
   * Waits for Ready=False with `reason`, failing at once should the Secret be
   * written meanwhile; then watches three more refreshes for a write, and
   * checks the Event and that no message holds a value. Returns the message.
   */
  async function refused(name: string, reason: string, before: SecretObject): Promise<string> {
    const rv = before.metadata.resourceVersion;
    const secretUnchanged = async () => {
      const now = await getSecret(client(), namespace, name);
      if (now?.metadata.resourceVersion !== rv)
        throw new GiveUpError(
          `the Secret was written (resourceVersion ${rv} → ${now?.metadata.resourceVersion ?? 'deleted'}, ` +
            `${Object.keys(now?.data ?? {}).length} keys, ${JSON.stringify(now?.data ?? {}).length} bytes of data)`,
        );
    };
    const message = await waitFor(
      `ManagedSecret ${name} Ready=False (${reason})`,
      async () => {
        await secretUnchanged();
        const ready = readyOf(await getManagedSecret(client(), namespace, name));
        return ready?.status === 'False' && ready.reason === reason ? ready.message : undefined;
      },
      30_000,
      100,
    );
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      await secretUnchanged();
      await sleep(200);
    }
    expect((await getSecret(client(), namespace, name))?.data).to.deep.equal(before.data);
    const events = await eventsAbout(client(), namespace, name, reason);
    expect(events, `Events with reason ${reason}`).to.have.length.greaterThan(0);
    for (const text of [message, ...events.map((e) => e.message ?? '')]) expect(text).not.to.contain(marker);
    return message;
  }

  it('template source over --max-template-bytes: TemplateTooLarge', async () => {
    await fixture.store.put('tmpl', { user: valueOf(marker, 20) });
    const before = await synced('template', {
      data: [{ secretKey: 'user', remoteRef: { key: 'tmpl', property: 'user' } }],
      target: { template: { data: { line: 'user={{user}}' } } },
    });
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/template`, {
      body: {
        spec: { target: { template: { data: { line: `user={{user}};${'#'.repeat(LIMITS.maxTemplateBytes)}` } } } },
      },
      contentType: 'application/merge-patch+json',
    });
    expect(await refused('template', 'TemplateTooLarge', before)).to.contain('--max-template-bytes');
  });

  it('values that grow past --max-secret-bytes together: SecretTooLarge', async () => {
    const data = [1, 2, 3, 4, 5].map((i) => ({ secretKey: `part${i}`, remoteRef: { key: `size/${i}` } }));
    for (const i of [1, 2, 3, 4, 5]) await fixture.store.put(`size/${i}`, { value: valueOf(marker, 600) });
    const before = await synced('secret-size', { data });
    // 5 × 1,000 bytes: each value within --max-value-bytes, together over --max-secret-bytes.
    for (const i of [1, 2, 3, 4, 5]) await fixture.store.put(`size/${i}`, { value: valueOf(marker, 1_000) });
    expect(await refused('secret-size', 'SecretTooLarge', before)).to.contain('--max-secret-bytes');
  });

  it('an entry whose properties grow past --max-keys-per-secret: TooManyKeys', async () => {
    const props = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i + 1}`, valueOf(marker, 30)]));
    await fixture.store.put('props', props(LIMITS.maxKeysPerSecret));
    const before = await synced('keys', { dataFrom: [{ extract: { key: 'props' } }] });
    await fixture.store.put('props', props(LIMITS.maxKeysPerSecret + 1));
    expect(await refused('keys', 'TooManyKeys', before)).to.contain('--max-keys-per-secret');
  });

  it('a find that matches more than --max-find-entries: TooManyEntries', async () => {
    for (let i = 1; i <= LIMITS.maxFindEntries; i++)
      await fixture.store.put(`found/e${i}`, { value: valueOf(marker, 30) });
    const before = await synced('entries', { dataFrom: [{ find: { prefix: 'found/' } }] });
    await fixture.store.put(`found/e${LIMITS.maxFindEntries + 1}`, { value: valueOf(marker, 30) });
    expect(await refused('entries', 'TooManyEntries', before)).to.contain('--max-find-entries');
  });

  it('one value past --max-value-bytes: ValueTooLarge', async () => {
    await fixture.store.put('big', { value: valueOf(marker, 500) });
    const before = await synced('value', { data: [{ secretKey: 'big', remoteRef: { key: 'big' } }] });
    await fixture.store.put('big', { value: valueOf(marker, LIMITS.maxValueBytes + 1) });
    const message = await refused('value', 'ValueTooLarge', before);
    expect(message).to.contain('--max-value-bytes');
    expect(message).to.contain('"big"');
  });
});
