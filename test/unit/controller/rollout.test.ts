// The rollout restarter's exactly-once rules, with our KubeClient faked (one
// Deployment it serves and the writes it is asked for): a restart whose workload
// already records the version is skipped and only clears the intent; a
// restart this replica may no longer write (shard lost) sends nothing and is
// carried out again once the shard is back; the intent rides along within the
// debounce window and opens a new one after it.
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { NotShardOwnerError } from '../../../src/api/errors.js';
import type { ManagedSecret, RolloutRestartStatus } from '../../../src/api/types.js';
import { EventRecorder } from '../../../src/controller/events.js';
import {
  MAX_RESTARTED_FOR_ENTRIES,
  RolloutRestarter,
  alreadyRestartedFor,
  parseRestartedFor,
  recordRestartedFor,
  versionTag,
} from '../../../src/controller/rollout.js';
import type { KubeClient, WriteFence } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';

const V1 = 'hmac-sha256:1111111111111111aaaaaaaaaaaaaaaa';
const V2 = 'hmac-sha256:2222222222222222bbbbbbbbbbbbbbbb';
const DEPLOYMENT = '/apis/apps/v1/namespaces/apps/deployments/web';

const managedSecret = (rolloutRestart?: RolloutRestartStatus, debounce = '10s'): ManagedSecret => ({
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'ManagedSecret',
  metadata: { name: 'db', namespace: 'apps', uid: 'u1', generation: 1 },
  spec: {
    storeRef: { name: 's' },
    data: [{ secretKey: 'pw', remoteRef: { key: 'db' } }],
    rolloutRestart: { targets: [{ kind: 'Deployment', name: 'web' }], debounce },
  },
  status: { syncedVersion: V1, ...(rolloutRestart ? { rolloutRestart } : {}) },
});

/** One Deployment, served and patched as the API server would (resourceVersion and generation move). */
function fakeCluster(annotations: Record<string, string> = {}) {
  const deployment = {
    metadata: { name: 'web', namespace: 'apps', generation: 1, resourceVersion: '10' },
    spec: { template: { metadata: { annotations: { ...annotations } } } },
    status: { observedGeneration: 1 },
  };
  const patches: { path: string; body: unknown; fence?: WriteFence }[] = [];
  const client = {
    get: (path: string) => {
      if (path !== DEPLOYMENT) return Promise.reject(new Error(`unexpected GET ${path}`));
      return Promise.resolve(structuredClone(deployment));
    },
    request: (method: string, path: string, opts: { body: unknown; fence?: WriteFence }) => {
      if (path.includes('/events')) return Promise.resolve({});
      if (method !== 'PATCH' || path !== DEPLOYMENT) return Promise.reject(new Error(`unexpected ${method} ${path}`));
      opts.fence?.assertHeld();
      patches.push({ path, body: opts.body, ...(opts.fence ? { fence: opts.fence } : {}) });
      const body = opts.body as {
        spec: { template: { metadata: { annotations: Record<string, string> } } };
      };
      Object.assign(deployment.spec.template.metadata.annotations, body.spec.template.metadata.annotations);
      deployment.metadata.generation += 1;
      deployment.metadata.resourceVersion = String(Number(deployment.metadata.resourceVersion) + 1);
      deployment.status.observedGeneration = deployment.metadata.generation;
      return Promise.resolve(structuredClone(deployment));
    },
  } as unknown as KubeClient;
  return { client, deployment, patches };
}

/** A shard fence this test takes away and gives back. */
function switchableFence() {
  let held = true;
  const fence: WriteFence = {
    assertHeld: () => {
      if (!held) throw new NotShardOwnerError(3);
    },
    signal: new AbortController().signal,
  };
  return { fence, set: (h: boolean) => (held = h) };
}

function restarter(client: KubeClient, fence?: WriteFence, now?: () => number) {
  const cleared: { version: string; fence?: WriteFence }[] = [];
  const log = createLogger('error', new PassThrough());
  const r = new RolloutRestarter({
    client,
    log,
    metrics: new Metrics({ defaultMetrics: false }),
    events: new EventRecorder(client, log),
    eventTarget: (ms) => ({
      apiVersion: ms.apiVersion,
      kind: ms.kind,
      name: ms.metadata.name,
      namespace: ms.metadata.namespace ?? '',
      uid: ms.metadata.uid ?? '',
    }),
    patchStatus: () => Promise.resolve(undefined),
    clearIntent: (_ms, version, f) => {
      fence?.assertHeld();
      cleared.push({ version, ...(f ? { fence: f } : {}) });
      return Promise.resolve({});
    },
    ...(fence ? { shardFence: () => fence } : {}),
    maxConcurrent: 2,
    enabled: true,
    ...(now ? { now } : {}),
  });
  return { r, cleared };
}

const due = (version: string): RolloutRestartStatus => ({
  pendingVersion: version,
  notBefore: new Date(Date.now() - 1_000).toISOString(),
});

/** Lets timers of 0 ms and the promise chains after them run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 10));
};

describe('rollout restarts: the restarted-for annotation', () => {
  it('records each ManagedSecret once, newest first, with a short version tag, and stays bounded', () => {
    expect(versionTag(V1)).to.equal('1111111111111111');
    let value = recordRestartedFor(undefined, [['db', V1]]);
    expect(value).to.equal('db=1111111111111111');
    value = recordRestartedFor(value, [['api', V2]]);
    expect(value).to.equal('api=2222222222222222,db=1111111111111111');
    value = recordRestartedFor(value, [['db', V2]]);
    expect([...parseRestartedFor(value)]).to.deep.equal([
      ['db', '2222222222222222'],
      ['api', '2222222222222222'],
    ]);
    expect(alreadyRestartedFor(value, 'db', V2)).to.equal(true);
    expect(alreadyRestartedFor(value, 'db', V1)).to.equal(false);
    expect(alreadyRestartedFor(value, 'other', V2)).to.equal(false);
    for (let i = 0; i < 40; i++) value = recordRestartedFor(value, [[`ms-${i}`, V1]]);
    expect(parseRestartedFor(value).size).to.equal(MAX_RESTARTED_FOR_ENTRIES);
    expect(alreadyRestartedFor(value, 'ms-39', V1)).to.equal(true);
    expect(alreadyRestartedFor(value, 'db', V2)).to.equal(false);
    expect(parseRestartedFor('garbage,=x,,a=b')).to.deep.equal(new Map([['a', 'b']]));
  });
});

describe('rollout restarts: exactly once (src/controller/rollout.ts)', () => {
  it('skips a workload already restarted for the pending version and only clears the intent', async () => {
    const { client, patches, deployment } = fakeCluster({
      'secretsync.io/restarted-at': '2026-01-01T00:00:00.000Z',
      'secretsync.io/restarted-for': `other=abcdabcdabcdabcd,db=${versionTag(V1)}`,
    });
    const { r, cleared } = restarter(client);
    r.resume(managedSecret(due(V1)), 'db');
    await settle();
    expect(patches).to.deep.equal([]);
    expect(deployment.metadata.generation).to.equal(1);
    expect(cleared.map((c) => c.version)).to.deep.equal([V1]);
    await r.stop();
  });

  it('restarts a workload not yet restarted for the version once: records it, with its resourceVersion as precondition', async () => {
    const { client, patches, deployment } = fakeCluster({ 'secretsync.io/restarted-for': 'db=0000000000000000' });
    const { r, cleared } = restarter(client);
    const ms = managedSecret(due(V2));
    r.resume(ms, 'db');
    await settle();
    expect(patches).to.have.length(1);
    const body = patches[0]?.body as {
      metadata: { resourceVersion: string };
      spec: { template: { metadata: { annotations: Record<string, string> } } };
    };
    expect(body.metadata.resourceVersion).to.equal('10');
    expect(body.spec.template.metadata.annotations['secretsync.io/restarted-for']).to.equal(`db=${versionTag(V2)}`);
    expect(deployment.metadata.generation).to.equal(2);
    expect(cleared.map((c) => c.version)).to.deep.equal([V2]);
    // The cache still shows the intent (the clear has not come back through the watch): not a second restart.
    r.resume(ms, 'db');
    await settle();
    // Another replica (or this one after a restart) that reads the intent finds the workload done.
    const { r: other, cleared: clearedByOther } = restarter(client);
    other.resume(managedSecret(due(V2)), 'db');
    await settle();
    expect(patches).to.have.length(1);
    expect(deployment.metadata.generation).to.equal(2);
    expect(clearedByOther.map((c) => c.version)).to.deep.equal([V2]);
    await r.stop();
    await other.stop();
  });

  it('a replica that lost the shard before the restart was due sends nothing and clears nothing; it carries it out once the shard is back', async () => {
    const { client, patches } = fakeCluster();
    const shard = switchableFence();
    const { r, cleared } = restarter(client, shard.fence);
    const ms = managedSecret({ pendingVersion: V1, notBefore: new Date(Date.now() + 100).toISOString() });
    r.resume(ms, 'db');
    shard.set(false);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await settle();
    expect(patches).to.deep.equal([]);
    expect(cleared).to.deep.equal([]);
    shard.set(true);
    r.resume(ms, 'db');
    await settle();
    expect(patches).to.have.length(1);
    expect(patches[0]?.fence).to.equal(shard.fence);
    expect(cleared.map((c) => c.version)).to.deep.equal([V1]);
    expect(cleared[0]?.fence).to.equal(shard.fence);
    await r.stop();
  });

  it('a change within the pending window rides along (same notBefore, newer version); after it, a new window opens', () => {
    let now = Date.parse('2026-03-01T12:00:00Z');
    const { client } = fakeCluster();
    const { r } = restarter(client, undefined, () => now);
    const first = r.planChange(managedSecret(undefined, '30s'), V1).intent;
    expect(first).to.deep.equal({ pendingVersion: V1, notBefore: '2026-03-01T12:00:30.000Z' });
    now += 10_000;
    expect(r.planChange(managedSecret(first, '30s'), V2).intent).to.deep.equal({
      pendingVersion: V2,
      notBefore: '2026-03-01T12:00:30.000Z',
    });
    now += 40_000;
    expect(r.planChange(managedSecret(first, '30s'), V1).intent).to.deep.equal({
      pendingVersion: V1,
      notBefore: '2026-03-01T12:01:20.000Z',
    });
  });

  it('a flapping source records no intent', () => {
    let now = Date.parse('2026-03-01T12:00:00Z');
    const { client } = fakeCluster();
    const { r } = restarter(client, undefined, () => now);
    const ms = managedSecret();
    ms.spec.rolloutRestart = { ...ms.spec.rolloutRestart, maxChangesPerHour: 2 };
    expect(r.planChange(ms, V1).intent).to.not.equal(undefined);
    now += 1_000;
    expect(r.planChange(ms, V2).intent).to.not.equal(undefined);
    now += 1_000;
    const third = r.planChange(ms, V1);
    expect(third.intent).to.equal(undefined);
    expect(third.report).to.equal('flapping');
  });

  it('the same version planned again (its status record was lost) counts once towards the flap limit', () => {
    let now = Date.parse('2026-03-01T12:00:00Z');
    const { client } = fakeCluster();
    const { r } = restarter(client, undefined, () => now);
    const ms = managedSecret();
    ms.spec.rolloutRestart = { ...ms.spec.rolloutRestart, maxChangesPerHour: 2 };
    expect(r.planChange(ms, V1).changes).to.equal(1);
    for (let i = 0; i < 3; i++) {
      now += 1_000;
      const again = r.planChange(ms, V1);
      expect(again.changes).to.equal(1);
      expect(again.intent?.pendingVersion).to.equal(V1);
    }
    now += 1_000;
    expect(r.planChange(ms, V2).changes).to.equal(2);
  });
});
