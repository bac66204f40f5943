// The operator, running over 100 ManagedSecrets of a Secrets Manager store
// (moto), through backend faults: the endpoint hangs (accepts connections and
// never answers), throttles (429 ThrottlingException with Retry-After), or
// fails (500 InternalServiceError). The store names a TCP proxy (it plays the
// hang and counts connections), which forwards to an HTTP proxy (it answers
// the throttling and failures itself and counts requests), which forwards to
// moto; the admin allows the store that endpoint (--allowed-endpoints).
//
// During each fault every secret gets a new value (written to moto directly),
// and each fault must leave:
//   (a) no target Secret deleted, recreated or emptied, during or after it;
//   (b) a bounded number of backend requests while it lasts;
//   (c) every Secret holding the new value, and every ManagedSecret Ready,
//       within a stated time after it ends.
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { expect } from 'chai';
import type { KubeClient } from '../../../src/kube/client.js';
import { HttpFaultProxy, TcpFaultProxy, awsErrorAnswer, type MotoServer } from '../../../tools/testenv/index.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  FleetWatch,
  OPERATOR_NAMESPACE,
  createAwsFleet,
  harnessClient,
  spawnFaultOperator,
  throughFault,
  type AwsFleet,
  type FaultOperator,
} from './operator-faults.js';

const N = 100;
const FAULT_MS = 10_000;
const REFRESH = '4s';
/**
 * Defaults but for a shorter per-attempt timeout (3 attempts of 5 s each: a
 * hung call gives up within 15 s and some back-off).
 */
const OPERATOR_ENV = { SECRETSYNC_PROVIDER_REQUEST_TIMEOUT: '5s', SECRETSYNC_PROVIDER_CONNECT_TIMEOUT: '2s' };
/**
 * After the fault: a call left hanging ends within its attempt timeout (5 s),
 * the per-item back-off after a 10 s outage is at most 8 s plus 50% jitter
 * (or the Retry-After, 2 s), and the refresh comes within 4 s.
 */
const CONVERGE_WITHIN_MS = 30_000;
/**
 * Backend calls go through the store's budget (requestsPerSecond, default 10
 * a second, bursts of 20) and each makes at most 3 attempts: at most
 * 3 × (20 + 10 a second) requests during a fault, however many ManagedSecrets
 * fail and retry.
 */
const requestBound = (ms: number) => 3 * (20 + Math.ceil((10 * ms) / 1000));

describe('operator under backend faults (100 ManagedSecrets of Secrets Manager on moto)', function () {
  this.timeout(10 * 60_000);
  const namespace = uniqueName('faults-backend');
  let moto: MotoServer;
  let sm: SecretsManagerClient;
  let admin: KubeClient;
  let http: HttpFaultProxy;
  let tcp: TcpFaultProxy;
  let watch: FleetWatch;
  let operator: FaultOperator;
  let fleet: AwsFleet;
  let round = 0;
  const figures: string[] = [];

  before(async function () {
    this.timeout(240_000);
    moto = sharedMoto();
    sm = new SecretsManagerClient(moto.clientConfig());
    const cluster = sharedCluster();
    admin = harnessClient(cluster);
    await admin
      .request('POST', '/api/v1/namespaces', {
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NAMESPACE } },
      })
      .catch(() => undefined);
    http = await HttpFaultProxy.inFrontOfUrl(moto.endpoint);
    tcp = await TcpFaultProxy.start({ host: '127.0.0.1', port: http.port });
    const endpoint = `http://127.0.0.1:${tcp.port}`;
    fleet = await createAwsFleet(admin, sm, moto, { namespace, n: N, refreshInterval: REFRESH, endpoint });
    watch = await new FleetWatch(admin, namespace, fleet.names, ['a']).start();
    operator = spawnFaultOperator({
      kubeconfigPath: cluster.kubeconfigPath,
      namespaces: [namespace],
      env: { ...OPERATOR_ENV, SECRETSYNC_ALLOWED_ENDPOINTS: endpoint },
    });
    await watch.converged(fleet.expected(0), 120_000, 'the cold sync');
    watch.guard();
  });

  after(async function () {
    this.timeout(60_000);
    if (http) http.inject = undefined;
    tcp?.setMode('forward');
    await operator?.stop(5_000);
    await watch?.stop();
    await admin?.request('DELETE', `/api/v1/namespaces/${namespace}`).catch(() => undefined);
    admin?.close();
    await tcp?.stop();
    await http?.stop();
    sm?.destroy();
    if (figures.length > 0) console.log(figures.map((f) => `      ${f}`).join('\n'));
  });

  /** One fault with new values written a second in; then checks (a), (b) and (c). */
  async function fault(name: string, steps: { begin(): void; end(): void }): Promise<void> {
    round += 1;
    let notReady = 0;
    const run = await throughFault({
      ...steps,
      write: () => fleet.putRound(round),
      holdMs: FAULT_MS,
      converge: () => {
        notReady = N - watch.state(fleet.expected(round)).ready;
        return watch.converged(fleet.expected(round), CONVERGE_WITHIN_MS, `the fleet to converge after ${name}`);
      },
    });
    const { began, endedAt, convergedAt } = run;
    const requests = http.requests.filter((r) => r.at >= began && r.at < endedAt).length;
    const connections = tcp.accepted.filter((t) => t >= began && t < endedAt).length;
    figures.push(
      `${name}: ${requests} backend request(s) and ${connections} connection(s) in ${((endedAt - began) / 1000).toFixed(1)} s; ` +
        `${notReady} ManagedSecret(s) not Ready when it ended; ` +
        (convergedAt
          ? `converged ${((convergedAt - endedAt) / 1000).toFixed(1)} s after it ended`
          : 'did not converge'),
    );
    expect(watch.violations, 'no target Secret deleted, recreated or emptied').to.deep.equal([]);
    if (run.failure) throw run.failure;
    expect(operator.exited(), `the operator is still running:\n${operator.lines.slice(-10).join('\n')}`).to.equal(
      false,
    );
    expect(requests + connections, 'the backend was asked during the fault').to.be.greaterThan(0);
    expect(requests, 'backend requests during the fault').to.be.at.most(requestBound(endedAt - began));
    expect(connections, 'backend connections during the fault').to.be.at.most(requestBound(endedAt - began));
  }

  it('the backend hangs for 10 s (connections accepted, nothing answered)', async () => {
    await fault('hanging backend', { begin: () => tcp.setMode('blackhole'), end: () => tcp.setMode('forward') });
  });

  it('the backend throttles for 10 s (429 ThrottlingException, Retry-After: 2)', async () => {
    const throttled = awsErrorAnswer(429, 'ThrottlingException', 'Rate exceeded', { 'retry-after': '2' });
    await fault('throttling backend', {
      begin: () => (http.inject = () => throttled),
      end: () => (http.inject = undefined),
    });
  });

  it('the backend fails for 10 s (500 InternalServiceError)', async () => {
    const failing = awsErrorAnswer(500, 'InternalServiceError', 'An internal error occurred');
    await fault('failing backend', {
      begin: () => (http.inject = () => failing),
      end: () => (http.inject = undefined),
    });
  });

  it('left every target Secret in place, with its data, throughout', () => {
    expect(watch.violations).to.deep.equal([]);
    expect(watch.state(fleet.expected(round))).to.deep.equal({ matching: N, ready: N, total: N });
  });
});
