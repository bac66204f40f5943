// The rotation and rolloutRestart rules on a real API server: accepted and refused with our messages.
import { expect } from 'chai';
import { API_VERSION } from '../../../src/api/types.js';
import { KubeApiError } from '../../../src/kube/client.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import { adminClient, ensureNamespace } from '../operator.js';

describe('rotation and rolloutRestart validation on a real API server', () => {
  const namespace = uniqueName('rotcel');
  const client = () => adminClient(sharedCluster());
  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
  });

  const create = (spec: Record<string, unknown>) =>
    client().request<{ spec: Record<string, unknown> }>(
      'POST',
      `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`,
      {
        body: {
          apiVersion: API_VERSION,
          kind: 'ManagedSecret',
          metadata: { name: uniqueName('ms') },
          spec: { storeRef: { name: 's' }, data: [{ secretKey: 'k', remoteRef: { key: 'db' } }], ...spec },
        },
      },
    );
  const refused = async (spec: Record<string, unknown>): Promise<string> => {
    try {
      await create(spec);
    } catch (err) {
      if (err instanceof KubeApiError) return err.message;
      throw err;
    }
    throw new Error('accepted');
  };
  const rotation = (extra: Record<string, unknown>) => ({
    rotation: { interval: '24h', generator: { password: {} }, remoteRef: { key: 'db', property: 'pw' }, ...extra },
  });

  it('accepts each generator and fills in the defaults', async () => {
    const made = await create(rotation({}));
    expect(made.spec.rotation).to.deep.include({
      generator: { password: { length: 32, classes: ['lowercase', 'uppercase', 'digits', 'symbols'] } },
    });
    for (const generator of [{ randomBytes: {} }, { uuid: {} }]) await create(rotation({ generator }));
    for (const generator of [{ rsa: {} }, { ecdsa: {} }, { ed25519: {} }])
      await create(rotation({ generator, remoteRef: { key: 'keys' } }));
    const rr = await create({ rolloutRestart: { targets: [{ kind: 'Deployment', name: 'api' }] } });
    expect(rr.spec.rolloutRestart).to.deep.equal({
      targets: [{ kind: 'Deployment', name: 'api' }],
      debounce: '10s',
      maxChangesPerHour: 5,
    });
  });

  it('refuses what the rules forbid, with our messages', async () => {
    expect(await refused(rotation({ schedule: '@daily' }))).to.contain('exactly one of schedule or interval');
    expect(await refused(rotation({ timeZone: 'Europe/Paris' }))).to.contain('timeZone applies only to a schedule');
    expect(await refused(rotation({ interval: '500ms' }))).to.contain('at least 1s');
    expect(await refused(rotation({ generator: { uuid: {}, ed25519: {} } }))).to.contain('exactly one of password');
    expect(await refused(rotation({ generator: {} }))).to.contain('exactly one of password');
    expect(await refused(rotation({ generator: { ed25519: {} } }))).to.contain('remove rotation.remoteRef.property');
    expect(
      await refused(rotation({ generator: { password: { length: 8, minimum: { digits: 5, symbols: 4 } } } })),
    ).to.contain('add up to more than length');
    expect(
      await refused(rotation({ generator: { password: { classes: ['digits'], minimum: { symbols: 1 } } } })),
    ).to.contain('not among classes');
    expect(await refused(rotation({ generator: { rsa: { bits: 2500 } }, remoteRef: { key: 'k' } }))).to.contain(
      'rsa.bits must be 2048, 3072 or 4096',
    );
    expect(await refused(rotation({ generator: { password: { length: 4 } } }))).to.match(/length/);
    expect(await refused({ rolloutRestart: { targets: [{ kind: 'Deployment' }] } })).to.contain(
      'exactly one of name or selector',
    );
    expect(await refused({ rolloutRestart: { targets: [{ kind: 'Job', name: 'x' }] } })).to.match(/Unsupported value/);
  });
});
