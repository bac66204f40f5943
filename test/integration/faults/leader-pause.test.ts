// A leader that is paused (SIGSTOP: a long GC, a frozen VM, a node under
// memory pressure) past its lease duration must not write once it resumes: a
// standby has taken the Lease over and is writing the same objects. What the
// resumed process sent is read from the API server's audit log, attributed by
// credentials (each replica authenticates as its own ServiceAccount), and the
// store's version history shows whether it rotated a value it no longer owned.
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ANNOTATION_FORCE_SYNC, API_VERSION } from '../../../src/api/types.js';
import { KubeClient } from '../../../src/kube/client.js';
import { TestCluster, waitFor, type AuditEvent } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { uniqueName } from '../env.js';
import {
  OPERATOR_NAMESPACE,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  spawnOperatorProcess,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
} from '../operator.js';

// Metadata for what the operator writes (no bodies: Secrets hold values); the
// ManagedSecret status patches with their bodies, which name each rotation's
// request token (metadata, never a value).
const AUDIT_POLICY = JSON.stringify({
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived', 'ResponseStarted'],
  rules: [
    { level: 'Request', resources: [{ group: 'secretsync.io', resources: ['managedsecrets/status'] }] },
    {
      level: 'Metadata',
      resources: [
        { group: '', resources: ['secrets', 'events'] },
        { group: 'coordination.k8s.io', resources: ['leases'] },
        { group: 'secretsync.io' },
      ],
    },
    { level: 'None' },
  ],
});

const TIMING = ['--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '1s'];
const ROTATION_INTERVAL_MS = 2_000;
const READ_VERBS = new Set(['get', 'list', 'watch']);

const userOf = (serviceAccount: string) => `system:serviceaccount:${OPERATOR_NAMESPACE}:${serviceAccount}`;
const describeEvent = (e: AuditEvent) =>
  `${e.requestReceivedTimestamp} ${e.verb} ${e.objectRef?.resource ?? ''}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''} ${e.objectRef?.name ?? ''} -> ${e.responseStatus?.code ?? '?'}`;

/** The request token a ManagedSecret status patch recorded for a rotation it began, if it began one. */
function begunRotationToken(e: AuditEvent): string | undefined {
  const body = e.requestObject as { status?: { rotationInProgress?: { requestToken?: string } | null } } | undefined;
  return body?.status?.rotationInProgress?.requestToken ?? undefined;
}

describe('a paused leader', function () {
  this.timeout(240_000);
  let cluster: TestCluster;
  let admin: KubeClient;
  let fixture: LocalStoreFixture;
  let kubeconfigDir: string;
  const namespace = uniqueName('pause');
  const lease = 'secretsync-leader';
  const children: ChildProcess[] = [];

  /** A ServiceAccount bound to cluster-admin and a kubeconfig with its token: one identity per replica. */
  async function replicaKubeconfig(serviceAccount: string): Promise<string> {
    await admin.request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts`, {
      body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount } },
    });
    await admin.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: `${serviceAccount}-admin` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: OPERATOR_NAMESPACE }],
      },
    });
    const res = await admin.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts/${serviceAccount}/token`,
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } } },
    );
    const path = join(kubeconfigDir, serviceAccount);
    writeFileSync(path, cluster.kubeconfigYamlForToken(res.status.token, serviceAccount), { mode: 0o600 });
    return path;
  }

  const holder = async (): Promise<string | undefined> => {
    try {
      const l = await admin.get<{ spec: { holderIdentity?: string } }>(
        `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/${lease}`,
      );
      return l.spec.holderIdentity || undefined;
    } catch {
      return undefined;
    }
  };

  const exited = (child: ChildProcess, timeoutMs: number) =>
    waitFor(
      `process ${child.pid} to exit`,
      async () => (child.exitCode !== null || child.signalCode !== null ? true : undefined),
      timeoutMs,
      100,
    );

  before(async function () {
    this.timeout(180_000);
    // Its own control plane: the shared one keeps no audit log. No controller manager: nothing here needs one.
    cluster = await TestCluster.start({ name: 'leader-pause', controllerManager: false, auditPolicy: AUDIT_POLICY });
    admin = new KubeClient(cluster.kubeConfig());
    kubeconfigDir = mkdtempSync(join(tmpdir(), 'secretsync-replicas-'));
    await installCrds(cluster);
    await ensureNamespace(admin, namespace);
    await ensureNamespace(admin, OPERATOR_NAMESPACE);
    fixture = await createLocalStore(admin, namespace);
    await createSecretStore(admin, namespace, 'local', fixture.dir);
  });

  after(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    admin?.close();
    await cluster?.stop();
    fixture?.cleanup();
    if (kubeconfigDir) rmSync(kubeconfigDir, { recursive: true, force: true });
  });

  it('writes nothing after a standby took the Lease over, rotates nothing, and exits when it resumes', async () => {
    await fixture.store.put('shared', { a: '1', b: '2' });
    await fixture.store.put('rot/db', { user: 'app', password: 'initial' });
    for (const name of ['plain-1', 'plain-2', 'plain-3'])
      await createManagedSecret(admin, namespace, {
        metadata: { name },
        spec: { storeRef: { name: 'local' }, refreshInterval: '1h', dataFrom: [{ extract: { key: 'shared' } }] },
      });
    await createManagedSecret(admin, namespace, {
      metadata: { name: 'rot' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1h',
        data: [
          { secretKey: 'password', remoteRef: { key: 'rot/db', property: 'password' } },
          { secretKey: 'user', remoteRef: { key: 'rot/db', property: 'user' } },
        ],
        rotation: {
          interval: `${ROTATION_INTERVAL_MS / 1000}s`,
          generator: { password: { length: 24 } },
          remoteRef: { key: 'rot/db', property: 'password' },
          // Far more than this test makes: no version is pruned, so the history counts every rotation.
          keepVersions: 100,
        },
      },
    });

    const replicas = await Promise.all(
      ['replica-a', 'replica-b'].map(async (identity) => {
        const kubeconfig = await replicaKubeconfig(identity);
        const proc = spawnOperatorProcess(
          cluster,
          [namespace],
          ['--kubeconfig', kubeconfig, '--lease-name', lease, '--identity', identity, ...TIMING],
        );
        children.push(proc.child);
        return { identity, user: userOf(identity), ...proc };
      }),
    );
    const leaderId = await waitFor('a leader', holder, 60_000, 200);
    const [leader, standby] = leaderId === 'replica-a' ? [replicas[0], replicas[1]] : [replicas[1], replicas[0]];
    if (!leader || !standby) throw new Error('two replicas expected');
    for (const name of ['plain-1', 'plain-2', 'plain-3'])
      await waitForReady(admin, namespace, name, 'True', 'Synced', 30_000);
    await waitFor(
      'two rotations by the leader',
      async () => ((await fixture.store.history('rot/db')).length >= 3 ? true : undefined),
      30_000,
      200,
    );

    // Pause the leader past its lease duration.
    leader.child.kill('SIGSTOP');
    await waitFor(
      'the standby to take the Lease over',
      async () => ((await holder()) === standby.identity ? true : undefined),
      30_000,
      200,
    );
    const versionsAtTakeover = (await fixture.store.history('rot/db')).length;

    // Work both replicas want to do: a new value in the store, a forced sync, rotations coming due.
    await fixture.store.put('shared', { a: '1-changed', b: '2' });
    await admin.request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/plain-1`, {
      body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: String(Date.now()) } } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(admin, namespace, 'plain-1', (d) => d.a === '1-changed', 30_000);
    await waitFor(
      'the new leader to rotate twice',
      async () => ((await fixture.store.history('rot/db')).length >= versionsAtTakeover + 2 ? true : undefined),
      60_000,
      200,
    );

    leader.child.kill('SIGCONT');
    // It finds at once that it no longer leads: run() resolves 'lost', the operator exits non-zero (the Pod restarts).
    await exited(leader.child, 30_000);
    expect(leader.child.exitCode, leader.lines.slice(-20).join('\n')).to.equal(1);
    expect(leader.lines.some((l) => l.includes('lost the leader Lease'))).to.equal(true);

    // The new leader carries on: it syncs the change and keeps rotating.
    await waitForSecretData(admin, namespace, 'plain-1', (d) => d.a === '1-changed');
    const ms = await getManagedSecret(admin, namespace, 'rot');
    expect(ms.status?.rotationVersion).to.match(/^\d+$/);
    standby.child.kill('SIGTERM');
    await exited(standby.child, 60_000);
    expect(standby.child.exitCode).to.equal(0);

    const writes = cluster.auditEvents().filter((e) => e.stage === 'ResponseComplete' && !READ_VERBS.has(e.verb));
    const takeover = writes.find(
      (e) =>
        e.user.username === standby.user &&
        e.objectRef?.resource === 'leases' &&
        e.objectRef.name === lease &&
        e.verb === 'update' &&
        e.responseStatus?.code === 200,
    );
    if (!takeover) throw new Error('the audit log has no Lease update by the new leader');
    const takeoverAt = takeover.requestReceivedTimestamp;
    const byOldLeader = writes.filter((e) => e.user.username === leader.user);
    // Attribution works: the old leader wrote while it led.
    expect(byOldLeader.filter((e) => e.requestReceivedTimestamp < takeoverAt).length).to.be.greaterThan(0);
    // Nothing at all after the takeover, the Lease included: a failed attempt would still be a write sent while
    // not leading, and a fenced leader sends none (it does not even try to renew once past its deadline).
    expect(byOldLeader.filter((e) => e.requestReceivedTimestamp >= takeoverAt).map(describeEvent)).to.deep.equal([]);
    expect(
      writes.filter((e) => e.user.username === standby.user && e.requestReceivedTimestamp > takeoverAt).length,
    ).to.be.greaterThan(0);

    // Every version in the store is a rotation begun (recorded in status) by the replica that held the Lease then.
    const begun = new Set<string>();
    for (const e of writes) {
      if (
        e.objectRef?.resource !== 'managedsecrets' ||
        e.objectRef.subresource !== 'status' ||
        e.objectRef.name !== 'rot'
      )
        continue;
      if (e.responseStatus?.code !== 200) continue;
      const token = begunRotationToken(e);
      if (token === undefined) continue;
      const heldByWriter =
        e.user.username === leader.user
          ? e.requestReceivedTimestamp < takeoverAt
          : e.requestReceivedTimestamp >= takeoverAt;
      if (heldByWriter) begun.add(token);
    }
    const rotations = (await fixture.store.history('rot/db')).length - 1;
    expect(begun.size).to.be.greaterThan(3);
    // At most the rotations the holders began; at least all but one (a rotation begun as the operator stopped).
    expect(rotations).to.be.within(begun.size - 1, begun.size);
  });
});
