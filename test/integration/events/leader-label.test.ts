import { expect } from 'chai';
import { waitFor } from '../../../tools/testenv/index.js';
import { LABEL_LEADER, labelPodWhileLeading } from '../../../src/controller/leader-pod-label.js';
import { createLogger } from '../../../src/observability/logger.js';
import { sharedCluster, uniqueName } from '../env.js';
import { OPERATOR_NAMESPACE, adminClient, ensureNamespace, startOperator, type RunningOperator } from '../operator.js';

// The webhook Service selects `secretsync.io/leader: "true"`: only the leader answers notifications.
describe('the leader labels its own Pod (for the events webhook Service)', function () {
  this.timeout(120_000);
  const client = () => adminClient(sharedCluster());
  const podPath = (name: string) => `/api/v1/namespaces/${OPERATOR_NAMESPACE}/pods/${name}`;
  const leaderLabel = async (name: string) =>
    (await client().request<{ metadata: { labels?: Record<string, string> } }>('GET', podPath(name))).metadata.labels?.[
      LABEL_LEADER
    ];
  const running: RunningOperator[] = [];
  afterEach(async () => {
    for (const op of running.splice(0)) await op.stop();
  });

  it('exactly one replica carries the label; when it stops, the label moves to the other', async () => {
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    const pods = [uniqueName('replica-a'), uniqueName('replica-b')];
    for (const name of pods) {
      // Pod objects only (no kubelet here): what the label is patched on. A stale label, as a restarted container would find it.
      await client().request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/pods`, {
        body: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, labels: { [LABEL_LEADER]: 'true' } },
          spec: { containers: [{ name: 'operator', image: 'secretsync:test' }] },
        },
      });
    }
    const log = createLogger('error');
    const lease = uniqueName('label-lease');
    const operators: RunningOperator[] = [];
    for (const [i, pod] of pods.entries()) {
      const op = await startOperator(sharedCluster(), {
        leaderElection: true,
        identity: pod,
        leaseName: lease,
        namespaces: [uniqueName('unused')],
      });
      running.push(op);
      operators.push(op);
      labelPodWhileLeading(op.manager, client(), { namespace: OPERATOR_NAMESPACE, podName: pod, log, pollMs: 100 });
      if (i === 0)
        await waitFor('the first replica to lead', async () => (op.manager.isLeader() ? true : undefined), 30_000);
    }
    const labels = async () => Promise.all(pods.map(leaderLabel));
    await waitFor(
      'only the leader labelled',
      async () => {
        const [a, b] = await labels();
        return a === 'true' && b === undefined ? true : undefined;
      },
      15_000,
    );
    // The standby's stale label was removed at its start, and stays off while it does not lead.
    expect(operators[1]?.manager.isLeader()).to.equal(false);

    await operators[0]?.stop();
    await waitFor(
      'the label to move with the Lease',
      async () => {
        const [a, b] = await labels();
        return a === undefined && b === 'true' ? true : undefined;
      },
      60_000,
    );
    expect(operators[1]?.manager.isLeader()).to.equal(true);
  });
});
