// The ReplicationTarget schema against the real API server: the example is
// accepted with its defaults, bad input is refused with a human message.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { API_VERSION, type ReplicationTarget } from '../../../src/api/types.js';
import { KubeApiError } from '../../../src/kube/client.js';
import { repoRoot } from '../../../tools/testenv/paths.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import { adminClient } from '../operator.js';

const PATH = `/apis/${API_VERSION}/replicationtargets`;

describe('ReplicationTarget schema (API server)', function () {
  this.timeout(60_000);
  const created: string[] = [];
  const client = () => adminClient(sharedCluster());
  const create = async (body: object): Promise<ReplicationTarget> => {
    const t = await client().request<ReplicationTarget>('POST', PATH, { body });
    created.push(t.metadata.name);
    return t;
  };
  const refused = async (body: object): Promise<string> => {
    try {
      await create(body);
    } catch (err) {
      expect(err).to.be.instanceOf(KubeApiError);
      expect((err as KubeApiError).status).to.equal(422);
      return (err as KubeApiError).message;
    }
    throw new Error('the API server accepted a ReplicationTarget it should have refused');
  };
  const target = (spec: object, name = uniqueName('rt')) => ({
    apiVersion: API_VERSION,
    kind: 'ReplicationTarget',
    metadata: { name },
    spec: { kubeconfigSecretRef: { name: 'dr' }, ...spec },
  });

  before(async () => {
    await installCrds(sharedCluster());
  });

  after(async () => {
    for (const name of created)
      await client()
        .request('DELETE', `${PATH}/${name}`)
        .catch(() => undefined);
  });

  it('accepts examples/replication-target.yaml, and fills in the defaults of a minimal one', async () => {
    const example = parse(
      readFileSync(join(repoRoot, 'examples', 'replication-target.yaml'), 'utf8'),
    ) as ReplicationTarget;
    example.metadata.name = uniqueName('example');
    const got = await create(example);
    expect(got.spec.overrides?.aws?.region).to.equal('us-west-2');
    const minimal = await create(target({ clusterStores: {} }));
    expect(minimal.spec).to.deep.equal({
      kubeconfigSecretRef: { name: 'dr', key: 'kubeconfig' },
      clusterStores: {},
      includeCredentials: false,
      prune: true,
      interval: '1m',
    });
  });

  it('refuses a target that selects nothing, a short interval, a bad endpoint and a long name', async () => {
    expect(await refused(target({}))).to.contain(
      'a ReplicationTarget must select something: set clusterStores, stores or managedSecrets',
    );
    expect(await refused(target({ stores: {}, interval: '1s' }))).to.contain(
      'interval must be a duration of at least 5s, such as 30s or 5m',
    );
    expect(await refused(target({ stores: {}, overrides: { aws: { endpoint: 'ftp://x' } } }))).to.match(
      /spec.overrides.aws.endpoint/,
    );
    expect(await refused(target({ stores: {} }, `a${'b'.repeat(70)}`))).to.contain(
      'a ReplicationTarget name must be at most 63 characters',
    );
    expect(
      await refused(target({ managedSecrets: { selector: { matchExpressions: [{ key: 'dr', operator: 'In' }] } } })),
    ).to.contain('values must be non-empty for operators In and NotIn');
  });
});
