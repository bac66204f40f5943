// `dataFrom.find` entries whose names map to one Secret key. Entry names may
// hold characters a Secret key may not; `a+b` and `a=b` (both valid Secrets
// Manager names) both become `a_b`. Mapped naively, one value silently
// overwrites the other, which one depending on the backend's listing order, so
// a refresh may flip the Secret between them (and whoever can create an entry
// in the shared prefix can replace another's value). The controller refuses
// it: InvalidSpec naming both entries, and the Secret stays as it was over
// every refresh. Against Secrets Manager (moto): the local store allows
// neither character.
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { expect } from 'chai';
import { sleep } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  createMotoSecretsManagerStore,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  readyOf,
  startOperator,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';
import { failureMessage } from './input-fixtures.js';

describe('security: find entries that map to the same Secret key', function () {
  this.timeout(120_000);
  const client = () => adminClient(sharedCluster());
  const namespace = uniqueName('collide');
  // A prefix of this test's own in the shared moto.
  const prefix = `${uniqueName('coll')}/`;
  const plus = `plus-${uniqueName('v')}`;
  const equals = `equals-${uniqueName('v')}`;
  let operator: RunningOperator;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    const sm = new SecretsManagerClient(sharedMoto().clientConfig());
    await sm.send(new CreateSecretCommand({ Name: `${prefix}a+b`, SecretString: plus }));
    await sm.send(new CreateSecretCommand({ Name: `${prefix}other`, SecretString: 'other-value' }));
    await createMotoSecretsManagerStore(client(), namespace, 'sm');
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
  });

  it('refuses a+b beside a=b with InvalidSpec naming both, and leaves the Secret as it was over several refreshes', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'found' },
      spec: { storeRef: { name: 'sm' }, refreshInterval: '1s', dataFrom: [{ find: { prefix } }] },
    });
    const synced = await waitForSecretData(client(), namespace, 'found', (d) => d.a_b === plus, 30_000);
    expect(decoded(synced)).to.deep.equal({ a_b: plus, other: 'other-value' });

    // A second entry lands on the same key.
    await new SecretsManagerClient(sharedMoto().clientConfig()).send(
      new CreateSecretCommand({ Name: `${prefix}a=b`, SecretString: equals }),
    );
    const seen = new Map<string, string>();
    const reasons = new Set<string>();
    // Meanwhile, what the Secret holds: a value written from the new entry fails at once.
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const value = decoded(await getSecret(client(), namespace, 'found')).a_b ?? '';
        if (value !== plus)
          throw new Error(`the Secret's a_b changed to the ${value === equals ? 'a=b' : 'other'} value`);
        await sleep(100);
      }
    })();
    let message: string;
    try {
      message = await Promise.race([
        failureMessage(client(), namespace, 'found', 'InvalidSpec', 30_000),
        watcher.then(() => ''),
      ]);
    } finally {
      watching = false;
      await watcher.catch(() => undefined);
    }
    expect(message).to.contain(`entries "${prefix}a+b" and "${prefix}a=b" both map to the Secret key "a_b"`);
    expect(message).not.to.contain(plus);
    expect(message).not.to.contain(equals);

    // Several refreshes (every second): the Secret never moves, the ManagedSecret keeps saying why.
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      const secret = await getSecret(client(), namespace, 'found');
      seen.set(secret?.metadata.resourceVersion ?? 'none', decoded(secret).a_b ?? '');
      const ready = readyOf(await getManagedSecret(client(), namespace, 'found'));
      reasons.add(`${ready?.status}/${ready?.reason}`);
      await sleep(200);
    }
    expect([...seen.entries()], 'resourceVersion → a_b of the Secret').to.deep.equal([
      [synced.metadata.resourceVersion, plus],
    ]);
    expect([...reasons]).to.deep.equal(['False/InvalidSpec']);
  });
});
