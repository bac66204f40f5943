// The operator, running over 200 ManagedSecrets, through control-plane faults
// on a cluster of its own (the shared one stays healthy for the rest of the
// suite): the API server frozen (SIGSTOP), the API server killed and
// restarted, etcd killed and restarted, and a network path to the API server
// that accepts connections and delivers nothing. The operator reaches the API
// server through a TCP proxy (which counts its connections and plays the silent
// path); the API server's audit log counts the requests that reached it.
//
// During each fault every store entry gets a new value, so the operator has
// writes to make and cannot make them. Each fault must leave:
//   (a) no target Secret deleted, recreated or emptied, during or after it;
//   (b) a bounded number of connections and requests while it lasts;
//   (c) every Secret holding the new value, and every ManagedSecret Ready,
//       within a stated time after it ends.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClient } from '../../../src/kube/client.js';
import { TcpFaultProxy, TestCluster } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { uniqueName } from '../env.js';
import {
  COUNTING_AUDIT_POLICY,
  FleetWatch,
  OPERATOR_NAMESPACE,
  createLocalFleet,
  harnessClient,
  operatorRequests,
  perSecond,
  spawnFaultOperator,
  throughFault,
  writeKubeconfig,
  type FaultOperator,
  type LocalFleet,
} from './operator-faults.js';

const N = 200;
/** Store entries, each read by N / ENTRIES ManagedSecrets: a round of local store writes takes a few seconds. */
const ENTRIES = 100;
const FAULT_MS = 10_000;
/** Short timeouts so the test is quick; the bounds below are stated in terms of them. */
const OPERATOR_ENV = {
  SECRETSYNC_KUBE_REQUEST_TIMEOUT: '10s',
  SECRETSYNC_KUBE_CONNECT_TIMEOUT: '2s',
  SECRETSYNC_WATCH_IDLE_TIMEOUT: '10s',
};
/**
 * After the fault: a request left on a silenced connection ends at the request
 * timeout (10 s), the per-item back-off after a 10 s outage is at most 8 s plus
 * 50% jitter, and the refresh that finds the new value comes within 4 s.
 */
const CONVERGE_WITHIN_MS = 30_000;
/**
 * What the operator may open or send during an outage is bounded by its
 * workers and watches, not by its ManagedSecrets: each of its 16 workers makes
 * at most 5 attempts per request, with at least 1.9 s of back-off from the
 * first to the last (under 3 a second), and each of its 5 watches backs off
 * before it re-lists (under 3 a second too). The code before the
 * fault-tolerance work (no back-off inside a request: a refused connection
 * failed at once and the worker went on to the next ManagedSecret) opened
 * 1,200 to 1,500 connections in the first 10 s of the API server being down,
 * up to 263 in one second (this code: 300 to 460, at most 79 in one second).
 */
const PER_SECOND_BOUND = 16 * 3 + 5 * 3;

describe('operator under control-plane faults (200 ManagedSecrets, a cluster of its own)', function () {
  this.timeout(10 * 60_000);
  let cluster: TestCluster;
  let admin: KubeClient;
  let proxy: TcpFaultProxy;
  let fleet: LocalFleet;
  let watch: FleetWatch;
  let operator: FaultOperator;
  let kubeconfigDir: string;
  let round = 0;
  const namespace = uniqueName('faults-cp');
  const figures: string[] = [];

  before(async function () {
    this.timeout(240_000);
    cluster = await TestCluster.start({
      name: 'faults-cp',
      controllerManager: false,
      auditPolicy: COUNTING_AUDIT_POLICY,
    });
    admin = harnessClient(cluster);
    await installCrds(cluster);
    await admin
      .request('POST', '/api/v1/namespaces', {
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NAMESPACE } },
      })
      .catch(() => undefined);
    fleet = await createLocalFleet(admin, namespace, N, '4s', ENTRIES);
    watch = await new FleetWatch(admin, namespace, fleet.names, ['a']).start();
    proxy = await TcpFaultProxy.inFrontOf(cluster);
    kubeconfigDir = mkdtempSync(join(tmpdir(), 'secretsync-faults-cp-'));
    operator = spawnFaultOperator({
      kubeconfigPath: writeKubeconfig(kubeconfigDir, 'via-proxy', proxy.kubeConfig(cluster)),
      namespaces: [namespace],
      env: OPERATOR_ENV,
    });
    await watch.converged(fleet.expected(0), 120_000, 'the cold sync');
    watch.guard();
  });

  after(async function () {
    this.timeout(60_000);
    // Whatever failed, nothing stays frozen or killed.
    for (const component of ['kube-apiserver', 'etcd'] as const) {
      try {
        cluster?.freeze(component, false);
      } catch {
        // not running
      }
    }
    proxy?.setMode('forward');
    await operator?.stop(5_000);
    await watch?.stop();
    admin?.close();
    await proxy?.stop();
    await cluster?.stop();
    fleet?.cleanup();
    if (kubeconfigDir) rmSync(kubeconfigDir, { recursive: true, force: true });
    if (figures.length > 0) console.log(figures.map((f) => `      ${f}`).join('\n'));
  });

  /** One fault with a new round written a second in; then checks (a), (b) and (c). */
  async function fault(
    name: string,
    steps: { begin(): Promise<void> | void; end(): Promise<void> | void },
  ): Promise<void> {
    expect(operator.exited(), 'the operator is running before the fault').to.equal(false);
    round += 1;
    const run = await throughFault({
      ...steps,
      write: () => fleet.putRound(round),
      holdMs: FAULT_MS,
      converge: () => watch.converged(fleet.expected(round), CONVERGE_WITHIN_MS, `the fleet to converge after ${name}`),
    });
    const { began, endedAt, over, convergedAt } = run;
    // Counted while the fault is on (a restart begins at endedAt); the catch-up after it is not the fault's.
    const opened = perSecond(proxy.accepted, began, endedAt);
    const connections = opened.reduce((a, b) => a + b, 0);
    const requests = operatorRequests(cluster.auditEvents(), began, endedAt).length;
    figures.push(
      `${name}: ${connections} connection(s) and ${requests} audited request(s) in ${((endedAt - began) / 1000).toFixed(1)} s ` +
        `(per second: ${opened.join(' ')}); back in ${((over - endedAt) / 1000).toFixed(1)} s; ` +
        (convergedAt ? `converged ${((convergedAt - over) / 1000).toFixed(1)} s after that` : 'did not converge'),
    );
    expect(watch.violations, 'no target Secret deleted, recreated or emptied').to.deep.equal([]);
    if (run.failure) throw run.failure;
    expect(operator.exited(), `the operator is still running:\n${operator.lines.slice(-10).join('\n')}`).to.equal(
      false,
    );
    const bound = Math.ceil((PER_SECOND_BOUND * (endedAt - began)) / 1000);
    expect(connections, 'connections during the fault').to.be.at.most(bound);
    expect(requests, 'requests that reached the API server during the fault').to.be.at.most(bound);
  }

  it('the API server frozen (SIGSTOP) for 10 s', async () => {
    await fault('API server frozen', {
      begin: () => cluster.freeze('kube-apiserver', true),
      end: () => cluster.freeze('kube-apiserver', false),
    });
  });

  it('the API server killed, and started again 10 s later', async () => {
    await fault('API server killed', {
      begin: () => cluster.killComponent('kube-apiserver'),
      end: () => cluster.startComponent('kube-apiserver'),
    });
  });

  it('etcd killed, and started again 10 s later', async () => {
    await fault('etcd killed', {
      begin: () => cluster.killComponent('etcd'),
      end: () => cluster.startComponent('etcd'),
    });
  });

  it('the path to the API server silent for 10 s (connections accepted, nothing delivered)', async () => {
    await fault('silent path', { begin: () => proxy.setMode('blackhole'), end: () => proxy.setMode('forward') });
  });

  it('left every target Secret in place, with its data, throughout', () => {
    expect(watch.violations).to.deep.equal([]);
    expect(watch.state(fleet.expected(round))).to.deep.equal({ matching: N, ready: N, total: N });
  });
});
