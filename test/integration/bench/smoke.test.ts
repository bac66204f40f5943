import { expect } from 'chai';
import { adminKube, defaultOptions, type BenchContext } from '../../../bench/lib/context.js';
import { DEFAULT_SCENARIOS, runScenarios, type RunReport } from '../../../bench/lib/runner.js';
import { sharedCluster, sharedMoto } from '../env.js';

// The benchmark at N = 50, every scenario, against the suite's control plane and
// moto: it must keep working. Timings are not asserted; only what must be exact is.
describe('bench smoke (N = 50, every scenario)', function () {
  this.timeout(12 * 60_000);
  let report: RunReport;

  before(async () => {
    const options = {
      ...defaultOptions(),
      compiled: false,
      unrelated: 500,
      refreshSeconds: 2,
      intervals: 5,
      changes: 20,
    };
    const ctx: BenchContext = {
      cluster: sharedCluster(),
      kube: adminKube(sharedCluster()),
      moto: () => Promise.resolve(sharedMoto()),
      options,
      log: () => undefined,
      results: new Map(),
    };
    // `scale` is opt-in for `npm run bench` (it is meant for N = 50,000); at 50 it must still work.
    report = await runScenarios(ctx, [...DEFAULT_SCENARIOS, 'scale'], 50);
  });

  const figures = (name: string) => {
    const result = report.results.find((r) => r.scenario === name);
    expect(result, name).to.not.equal(undefined);
    expect(result?.ok, `${name}: ${result?.error ?? ''}`).to.equal(true);
    return result?.figures ?? {};
  };

  it('runs every scenario and reports its figures', () => {
    expect(report.machine.cpus).to.be.greaterThan(0);
    expect(report.kubernetes).to.match(/^v1\./);
    const expected: Record<string, string[]> = {
      'cold-sync': ['allReadySeconds', 'syncsPerSecond', 'apiWritesPerManagedSecret', 'peakRssMiB'],
      'raw-baseline': ['secretsPerSecond', 'coldSyncRatio'],
      'steady-state': ['secretWrites', 'statusWrites', 'backendReadsPerInterval', 'apiRequestsPerMinute'],
      restart: ['verifiedSeconds', 'secretWrites', 'statusWrites'],
      'unrelated-secrets': ['peakRssMiBWithout', 'peakRssMiBWith', 'rssGrowthPercent'],
      'change-latency': ['p50Ms', 'p95Ms', 'p99Ms'],
      kms: ['kmsDecryptCalls'],
      'fan-in': ['keysReadPerCycle', 'backendCallsPerCycle'],
      'noisy-neighbour': ['aloneP99Ms', 'floodP99Ms', 'floodNoisyErrorsPerSecond', 'heldP99Ms', 'heldWorkersHeldMean'],
      hostile: ['peakRssMiB', 'memoryLimitMiB', 'eventLoopMaxMs', 'normalP50Ms', 'normalP99Ms'],
      events: [
        'p50Ms',
        'p99Ms',
        'backendReadsPerChange',
        'eventsBackendReadsPerHourAtRest',
        'pollingBackendReadsPerHourAtRest',
      ],
      vault: ['allReadySeconds', 'coldSyncVaultRequests', 'vaultRequestsPerCycle', 'keysReadPerCycle'],
      ibm: ['allReadySeconds', 'coldSyncIbmRequests', 'ibmRequestsPerCycle', 'keysReadPerCycle', 'iamLogins'],
      scale: [
        'coldSyncSeconds',
        'coldSyncMsPerManagedSecret',
        'peakRssKiBPerManagedSecret',
        'changeP99Ms',
        'restartVerifiedSeconds',
        'unrelatedRssGrowthPercent',
      ],
    };
    for (const [name, keys] of Object.entries(expected)) {
      const f = figures(name);
      for (const key of keys) {
        expect(f[key], `${name}.${key}`).to.be.a('number');
        expect(Number.isNaN(f[key]), `${name}.${key} is NaN`).to.equal(false);
      }
    }
    expect(figures('change-latency').missed).to.equal(0);
    expect(figures('noisy-neighbour').aloneMissed).to.equal(0);
    expect(figures('noisy-neighbour').floodMissed).to.equal(0);
    expect(figures('noisy-neighbour').heldMissed).to.equal(0);
    expect(figures('hostile').normalMissed).to.equal(0);
    const scale = figures('scale');
    expect(scale.changeMissed).to.equal(0);
    // At rest, after a restart and among unrelated Secrets the operator writes nothing.
    expect([scale.restOperatorWrites, scale.restartSecretWrites, scale.restartStatusWrites]).to.deep.equal([0, 0, 0]);
    expect([scale.restartOperatorWrites, scale.unrelatedOperatorWrites]).to.deep.equal([0, 0]);
    expect(Number(scale.restartUnchanged) + Number(scale.restartVerifiedFromStatus)).to.be.at.least(50);
  });

  it('the hostile namespace gets each kind of hostile object refused with its own reason, and the normal one stays in sync', () => {
    const f = figures('hostile');
    // The API server refuses the Secret type; objects admitted before the rule existed are the operator's to refuse.
    expect(f.forbiddenTypeAtAdmission).to.equal('refused (HTTP 422)');
    const ready = f.hostileReady as Record<string, number>;
    expect(ready['amplify False SecretTooLarge'], 'amplifying template').to.equal(f.hostileAmplify);
    expect(ready['fat False TemplateTooLarge'], '1 MB of template source').to.equal(f.hostileFat);
    expect(ready['forbidden False InvalidSpec'], 'forbidden Secret type').to.equal(f.hostileForbidden);
    expect(ready['regex True Synced'], '(a+)+$ over matching names').to.equal(f.hostileRegex);
    expect(f.peakRssMiB).to.be.below(f.memoryLimitMiB as number);
  });

  it('events: a change is read once per property of its entry, and nothing is read at rest', () => {
    const f = figures('events');
    // Each ManagedSecret reads properties a, b and c of its entry: three reads, shared by the entry's readers.
    expect(f.backendReadsPerChange).to.equal(3);
    expect(f.eventsBackendReadsPerHourAtRest).to.equal(0);
    expect(f.pollingBackendReadsPerHourAtRest).to.be.greaterThan(0);
  });

  it('vault: a refresh cycle reads each KV path about once, not once per ManagedSecret', () => {
    const f = figures('vault');
    expect(f.vaultRequestsPerCycle).to.be.greaterThan(0);
    // 50 ManagedSecrets over 100 paths use 50 paths: at most one read each per cycle, plus token renewals,
    // store checks and a refresh landing on the edge of the two-cycle window (56 seen once on a loaded CI run).
    // Reading per ManagedSecret and more than once per cycle would be 100 and more. As for IBM below.
    expect(f.vaultRequestsPerCycle).to.be.at.most(60);
  });

  it('ibm: a refresh cycle reads each secret about once, not once per ManagedSecret; one IAM login', () => {
    const f = figures('ibm');
    expect(f.ibmRequestsPerCycle).to.be.greaterThan(0);
    // 50 ManagedSecrets over 100 secrets use 50 of them: at most one read each per cycle (and a store check).
    expect(f.ibmRequestsPerCycle).to.be.at.most(60);
    expect(f.iamLogins).to.be.at.most(2);
  });

  it('steady-state makes no Secret or status writes', () => {
    const f = figures('steady-state');
    expect(f.secretWrites).to.equal(0);
    expect(f.statusWrites).to.equal(0);
    expect(f.operatorKubeWrites).to.equal(0);
  });

  it('a restart verifies everything and makes no Secret or status writes', () => {
    const f = figures('restart');
    expect(f.verified).to.be.at.least(50);
    expect(f.secretWrites).to.equal(0);
    expect(f.statusWrites).to.equal(0);
    expect(f.operatorKubeWrites).to.equal(0);
  });
});
