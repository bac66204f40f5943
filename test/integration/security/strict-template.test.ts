// A template that names a value that was not fetched (a typo, a property
// renamed in the store). Rendered the mustache way, the name becomes an empty
// string and the Secret gets a broken credential (`postgres://app:@db`), or
// loses a good one, with Ready=True. Templates are strict: the sync fails with
// InvalidTemplate naming the key and the missing name, and the Secret is
// neither created nor changed.
import { expect } from 'chai';
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
  startOperator,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';
import { eventsAbout, reconciled } from './input-fixtures.js';

describe('security: a template naming a value that does not exist', function () {
  this.timeout(120_000);
  const client = () => adminClient(sharedCluster());
  const namespace = uniqueName('strict');
  const password = `pw-${uniqueName('v')}`;
  let fixture: LocalStoreFixture;
  let operator: RunningOperator;

  const spec = (template: string) => ({
    storeRef: { name: 'local' },
    refreshInterval: '1s',
    data: [
      { secretKey: 'user', remoteRef: { key: 'db', property: 'user' } },
      { secretKey: 'password', remoteRef: { key: 'db', property: 'password' } },
    ],
    target: { template: { data: { url: template } } },
  });

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('db', { user: 'app', password });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('fails a new ManagedSecret with InvalidTemplate naming the missing name, and creates no Secret', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'typo' },
      spec: spec('postgres://{{user}}:{{pasword}}@db/app'),
    });
    const ready = await reconciled(client(), namespace, 'typo');
    // A few refreshes (every second): still nothing written.
    await sleep(3_000);
    expect(decoded(await getSecret(client(), namespace, 'typo')), 'the Secret').to.deep.equal({});
    expect(await getSecret(client(), namespace, 'typo')).to.equal(undefined);
    expect(ready.status).to.equal('False');
    expect(ready.reason, ready.message).to.equal('InvalidTemplate');
    expect(ready.message).to.contain('template for key "url" refers to "pasword"');
    expect(ready.message).not.to.contain(password);
    const events = await eventsAbout(client(), namespace, 'typo', 'InvalidTemplate');
    expect(events).to.have.length.greaterThan(0);
    for (const e of events) expect(e.message).not.to.contain(password);
  });

  it('fails an edited template the same way and leaves the Secret as it was, not emptied', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'edited' },
      spec: spec('postgres://{{user}}:{{password}}@db/app'),
    });
    const good = `postgres://app:${password}@db/app`;
    const synced = await waitForSecretData(client(), namespace, 'edited', (d) => d.url === good);
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/edited`, {
      body: { spec: { target: { template: { data: { url: 'postgres://{{user}}:{{passwd}}@db/app' } } } } },
      contentType: 'application/merge-patch+json',
    });
    const ready = await reconciled(client(), namespace, 'edited');
    await sleep(3_000);
    const secret = await getSecret(client(), namespace, 'edited');
    expect(decoded(secret), 'the Secret').to.deep.equal({ url: good });
    expect(secret?.metadata.resourceVersion).to.equal(synced.metadata.resourceVersion);
    expect(ready.reason, ready.message).to.equal('InvalidTemplate');
    expect(ready.message).to.contain('refers to "passwd"');
    expect(ready.message).not.to.contain(password);
  });
});
