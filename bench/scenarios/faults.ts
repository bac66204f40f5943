// 9. faults: N ManagedSecrets through each fault the operator must survive,
// on a control plane of its own (audit log on; the run's shared one is never
// paused or killed): the API server frozen 10 s, the API server killed and
// started again, etcd killed and started again, a silent path to the API
// server for 10 s, a Secrets Manager endpoint hanging, throttling and failing
// for 10 s, and the leader frozen past its Lease with a standby taking over.
// For each: the time to converge after the fault ends (every Secret holds the
// value written to the store during the fault, every ManagedSecret Ready), the
// connections and requests sent while it lasted, and any target Secret
// deleted, recreated or emptied (must be 0). For the frozen leader: how long
// the takeover took, how long the new leader took to converge, and what the
// old leader wrote after the takeover (must be 0; from the audit log, by user).
// Operator defaults throughout (timeouts, back-off, Lease timing), except a
// 5 s refresh interval with no floor, so that every ManagedSecret finds the new
// value while the fault is on.
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../../src/kube/client.js';
import {
  HttpFaultProxy,
  TcpFaultProxy,
  TestCluster,
  awsErrorAnswer,
  isPidAlive,
  type AuditEvent,
} from '../../tools/testenv/index.js';
import { releaseTempDir, trackTempDir } from '../../tools/testenv/processes.js';
import { installCrds } from '../../test/integration/crds.js';
import {
  COUNTING_AUDIT_POLICY,
  FleetWatch,
  HARNESS_AGENT,
  OPERATOR_NAMESPACE,
  createAwsFleet,
  createLocalFleet,
  operatorRequests,
  replicaKubeconfig,
  throughFault,
  writeKubeconfig,
  type FaultRun,
} from '../../test/integration/faults/operator-faults.js';
import { OperatorProcess, benchNamespace, ensureNamespace, type BenchContext, type Figures } from '../lib/context.js';
import { timeoutFor, until } from '../lib/fixtures.js';
import { seconds, sleep } from '../lib/util.js';

const FAULT_MS = 10_000;
const REFRESH = '5s';
/** Local store entries (each read by N / 100 ManagedSecrets): a round of local store writes takes seconds, not minutes. */
const LOCAL_ENTRIES = 100;
/** The Secrets Manager store's budget: one refresh cycle of 1,000 keys is 50 batch reads. */
const AWS_REQUESTS_PER_SECOND = 50;
const LEASE = 'secretsync-bench-faults';
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const NO_FLOOR = { SECRETSYNC_MIN_REFRESH_INTERVAL: '0' };

/** The figures of one fault, under `prefix`. */
function faultFigures(
  prefix: string,
  run: FaultRun,
  counts: { connections: number; requests: number },
  violations: number,
): Figures {
  return {
    [`${prefix}ConvergeSeconds`]: run.convergedAt === undefined ? -1 : seconds(run.convergedAt - run.over),
    [`${prefix}BackSeconds`]: seconds(run.over - run.endedAt),
    [`${prefix}Connections`]: counts.connections,
    [`${prefix}Requests`]: counts.requests,
    [`${prefix}SecretsLost`]: violations,
  };
}

/** How many of `items` share each key. */
function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

export async function faultsScenario(ctx: BenchContext, n: number): Promise<Figures> {
  ctx.log('faults: starting a control plane of its own (audit log on)');
  const cluster = await TestCluster.start({
    name: 'bench-faults',
    controllerManager: false,
    auditPolicy: COUNTING_AUDIT_POLICY,
  });
  const admin = new KubeClient(cluster.kubeConfig(), {
    maxSockets: 64,
    userAgent: HARNESS_AGENT,
    requestTimeoutMs: 10_000,
    connectTimeoutMs: 2_000,
  });
  const fctx: BenchContext = { ...ctx, cluster, kube: admin };
  const dir = mkdtempSync(join(tmpdir(), 'secretsync-bench-faults-'));
  trackTempDir(dir);
  const operators: OperatorProcess[] = [];
  const closers: (() => Promise<void> | void)[] = [];
  const figures: Figures = { faultSeconds: FAULT_MS / 1000, refreshSeconds: 5 };
  const startOperator = async (namespaces: string[], args: string[] = [], env: Record<string, string> = {}) => {
    const op = await OperatorProcess.start(fctx, { namespaces, args, env: { ...NO_FLOOR, ...env } });
    operators.push(op);
    return op;
  };
  const fail = (run: FaultRun, what: string) => {
    if (run.failure) ctx.log(`faults: ${what} did not converge: ${String(run.failure)}`);
  };
  try {
    await installCrds(cluster);
    await ensureNamespace(admin, OPERATOR_NAMESPACE);

    // ---------------------------------------------------------------- control plane
    const localNs = benchNamespace('faults-local');
    ctx.log(`faults: ${n} ManagedSecrets over a local store in ${localNs}`);
    const local = await createLocalFleet(admin, localNs, n, REFRESH, Math.min(n, LOCAL_ENTRIES));
    closers.push(() => local.cleanup());
    const localWatch = await new FleetWatch(admin, localNs, local.names, ['a']).start();
    closers.push(() => localWatch.stop());
    const kubeProxy = await TcpFaultProxy.inFrontOf(cluster);
    closers.push(() => kubeProxy.stop());
    const viaProxy = writeKubeconfig(dir, 'via-proxy', kubeProxy.kubeConfig(cluster));
    let op = await startOperator([localNs], ['--kubeconfig', viaProxy]);
    const coldAt = await localWatch.converged(local.expected(0), timeoutFor(n), 'the cold sync');
    figures.coldSyncSeconds = seconds(coldAt - op.startedAt);
    localWatch.guard();
    let round = 0;
    const controlPlaneFault = async (
      prefix: string,
      steps: { begin(): Promise<void> | void; end(): Promise<void> | void },
    ) => {
      round += 1;
      const r = round;
      ctx.log(`faults: ${prefix}`);
      const before = localWatch.violations.length;
      const run = await throughFault({
        ...steps,
        write: () => local.putRound(r),
        holdMs: FAULT_MS,
        converge: () => localWatch.converged(local.expected(r), timeoutFor(n), prefix),
      });
      fail(run, prefix);
      const counts = {
        connections: kubeProxy.accepted.filter((t) => t >= run.began && t < run.endedAt).length,
        requests: operatorRequests(cluster.auditEvents(), run.began, run.endedAt).length,
      };
      Object.assign(figures, faultFigures(prefix, run, counts, localWatch.violations.length - before));
    };
    await controlPlaneFault('apiServerFrozen', {
      begin: () => cluster.freeze('kube-apiserver', true),
      end: () => cluster.freeze('kube-apiserver', false),
    });
    await controlPlaneFault('apiServerKilled', {
      begin: () => cluster.killComponent('kube-apiserver'),
      end: () => cluster.startComponent('kube-apiserver'),
    });
    await controlPlaneFault('etcdKilled', {
      begin: () => cluster.killComponent('etcd'),
      end: () => cluster.startComponent('etcd'),
    });
    await controlPlaneFault('silentPath', {
      begin: () => kubeProxy.setMode('blackhole'),
      end: () => kubeProxy.setMode('forward'),
    });
    await op.stop();

    // ---------------------------------------------------------------- backend
    const moto = await ctx.moto();
    const http = await HttpFaultProxy.inFrontOfUrl(moto.endpoint);
    closers.push(() => http.stop());
    const tcp = await TcpFaultProxy.start({ host: '127.0.0.1', port: http.port });
    closers.push(() => tcp.stop());
    const endpoint = `http://127.0.0.1:${tcp.port}`;
    const sm = new SecretsManagerClient(moto.clientConfig());
    closers.push(() => sm.destroy());
    const awsNs = benchNamespace('faults-aws');
    ctx.log(`faults: ${n} ManagedSecrets over Secrets Manager (moto) in ${awsNs}`);
    const aws = await createAwsFleet(admin, sm, moto, {
      namespace: awsNs,
      n,
      refreshInterval: REFRESH,
      endpoint,
      requestsPerSecond: AWS_REQUESTS_PER_SECOND,
    });
    const awsWatch = await new FleetWatch(admin, awsNs, aws.names, ['a']).start();
    closers.push(() => awsWatch.stop());
    op = await startOperator([awsNs], ['--allowed-endpoints', endpoint]);
    const awsColdAt = await awsWatch.converged(aws.expected(0), timeoutFor(n), 'the cold sync (Secrets Manager)');
    figures.awsColdSyncSeconds = seconds(awsColdAt - op.startedAt);
    awsWatch.guard();
    let awsRound = 0;
    const backendFault = async (prefix: string, steps: { begin(): void; end(): void }) => {
      awsRound += 1;
      const r = awsRound;
      ctx.log(`faults: ${prefix}`);
      const before = awsWatch.violations.length;
      const run = await throughFault({
        ...steps,
        write: () => aws.putRound(r),
        holdMs: FAULT_MS,
        converge: () => awsWatch.converged(aws.expected(r), timeoutFor(n), prefix),
      });
      fail(run, prefix);
      const counts = {
        connections: tcp.accepted.filter((t) => t >= run.began && t < run.endedAt).length,
        requests: http.requests.filter((q) => q.at >= run.began && q.at < run.endedAt).length,
      };
      Object.assign(figures, faultFigures(prefix, run, counts, awsWatch.violations.length - before));
    };
    await backendFault('backendHanging', { begin: () => tcp.setMode('blackhole'), end: () => tcp.setMode('forward') });
    const throttled = awsErrorAnswer(429, 'ThrottlingException', 'Rate exceeded', { 'retry-after': '2' });
    await backendFault('backendThrottling', {
      begin: () => (http.inject = () => throttled),
      end: () => (http.inject = undefined),
    });
    const failing = awsErrorAnswer(500, 'InternalServiceError', 'An internal error occurred');
    await backendFault('backendFailing', {
      begin: () => (http.inject = () => failing),
      end: () => (http.inject = undefined),
    });
    await op.stop();

    // ---------------------------------------------------------------- the leader
    ctx.log('faults: leaderFrozen (two replicas, the leader frozen past its Lease)');
    const replicas = await Promise.all(
      ['replica-a', 'replica-b'].map(async (identity) => {
        const { path, user } = await replicaKubeconfig(admin, cluster, dir, identity);
        const proc = await startOperator(
          [localNs],
          ['--kubeconfig', path, '--leader-elect', 'true', '--lease-name', LEASE, '--identity', identity],
        );
        return { identity, user, proc };
      }),
    );
    const holder = async (): Promise<string | undefined> => {
      try {
        const lease = await admin.get<{ spec: { holderIdentity?: string } }>(
          `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/${LEASE}`,
        );
        return lease.spec.holderIdentity || undefined;
      } catch {
        return undefined;
      }
    };
    let leaderId: string | undefined;
    await until('a leader', async () => (leaderId = await holder()) !== undefined, 60_000, 200);
    const leader = replicas.find((r) => r.identity === leaderId);
    const standby = replicas.find((r) => r.identity !== leaderId);
    if (!leader || !standby) throw new Error(`no replica holds the Lease (holder: ${String(leaderId)})`);
    // The new leader has looked at every ManagedSecret (nothing to write) before the fault.
    await until(
      'the leader to verify every ManagedSecret',
      async () => {
        const samples = await leader.proc.metrics();
        const syncs = samples
          .filter((s) => s.name === 'secretsync_syncs_total')
          .reduce((total, s) => total + s.value, 0);
        return syncs >= n;
      },
      timeoutFor(n),
      250,
    );
    round += 1;
    const leaderRound = round;
    const before = localWatch.violations.length;
    const frozenAt = Date.now();
    process.kill(leader.proc.pid, 'SIGSTOP');
    let resumed = false;
    closers.push(() => {
      if (!resumed && isPidAlive(leader.proc.pid)) process.kill(leader.proc.pid, 'SIGCONT');
    });
    await sleep(1_000);
    await local.putRound(leaderRound);
    const takeoverSeen = await until(
      'the standby to take the Lease over',
      async () => (await holder()) === standby.identity,
      120_000,
      100,
    );
    let convergedAt: number | undefined;
    try {
      convergedAt = await localWatch.converged(local.expected(leaderRound), timeoutFor(n), 'leaderFrozen');
    } catch (err) {
      ctx.log(`faults: leaderFrozen did not converge: ${String(err)}`);
    }
    const resumedAt = Date.now();
    process.kill(leader.proc.pid, 'SIGCONT');
    resumed = true;
    let exited = true;
    try {
      await until('the old leader to exit', () => !isPidAlive(leader.proc.pid), 60_000, 100);
    } catch {
      exited = false;
    }
    // Anything the old leader still sends after it resumes reaches the audit log within moments.
    await sleep(3_000);
    const events = cluster.auditEvents().filter((e) => e.stage === 'ResponseComplete');
    const takeover = events.find(
      (e) =>
        e.user.username === standby.user &&
        e.objectRef?.resource === 'leases' &&
        e.objectRef.name === LEASE &&
        e.verb === 'update' &&
        e.responseStatus?.code === 200 &&
        Date.parse(e.requestReceivedTimestamp) >= frozenAt,
    );
    const takeoverAt = takeover ? Date.parse(takeover.requestReceivedTimestamp) : takeoverSeen;
    const byOldLeader = (e: AuditEvent) =>
      e.user.username === leader.user && Date.parse(e.requestReceivedTimestamp) >= takeoverAt;
    Object.assign(figures, {
      leaderFrozenTakeoverSeconds: seconds(takeoverAt - frozenAt),
      leaderFrozenConvergeSeconds: convergedAt === undefined ? -1 : seconds(convergedAt - takeoverAt),
      leaderFrozenSeconds: seconds(resumedAt - frozenAt),
      leaderFrozenOldLeaderWritesAfterTakeover: events.filter((e) => byOldLeader(e) && WRITE_VERBS.has(e.verb)).length,
      leaderFrozenOldLeaderRequestsAfterTakeover: events.filter(byOldLeader).length,
      leaderFrozenOldLeaderRequestsByVerb: countBy(
        events.filter(byOldLeader),
        (e) => `${e.verb} ${e.objectRef?.resource ?? ''}`,
      ),
      leaderFrozenOldLeaderExited: exited,
      leaderFrozenSecretsLost: localWatch.violations.length - before,
    });
    figures.secretsLost = localWatch.violations.length + awsWatch.violations.length;
    if (localWatch.violations.length + awsWatch.violations.length > 0)
      ctx.log(`faults: Secrets lost: ${[...localWatch.violations, ...awsWatch.violations].slice(0, 20).join('; ')}`);
    return figures;
  } finally {
    for (const op of operators) {
      if (isPidAlive(op.pid)) process.kill(op.pid, 'SIGCONT');
      await op.stop().catch(() => undefined);
    }
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    admin.close();
    await cluster.stop();
    releaseTempDir(dir);
  }
}
