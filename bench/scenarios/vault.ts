// The `vault` scenario: N ManagedSecrets over 100 KV v2 paths of a real
// (dev-mode) Vault server, token auth. What a Vault store costs: Vault
// requests in the cold sync and per refresh cycle (fetch coalescing should
// make a cycle cost about one read per path, not one per ManagedSecret), and
// the time until every ManagedSecret is Ready.
import { API_VERSION } from '../../src/api/types.js';
import { VaultServer } from '../../tools/testenv/index.js';
import {
  OperatorProcess,
  apiserverRequests,
  benchNamespace,
  diffCounters,
  diffRequests,
  ensureNamespace,
  operatorCounters,
  requestFigures,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import { Progress, createManagedSecrets, storePath, timeoutFor } from '../lib/fixtures.js';
import { round, seconds, sleep } from '../lib/util.js';

/** KV paths the ManagedSecrets share. */
const PATHS = 100;

export async function vaultScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const interval = ctx.options.refreshSeconds;
  ctx.log('vault: starting a dev Vault server');
  const vault = await VaultServer.start();
  const namespace = benchNamespace('vault');
  try {
    await ensureNamespace(ctx.kube, namespace);
    for (let p = 0; p < PATHS; p++)
      await vault.must('POST', `secret/data/bench/path-${p}`, { data: { value: `value-${p}`, other: 'x' } });
    await ctx.kube.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'vault-token' },
        stringData: { token: vault.rootToken },
      },
    });
    await ctx.kube.request('POST', storePath(namespace), {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: 'vault' },
        spec: {
          provider: {
            vault: {
              server: vault.address,
              auth: { tokenSecretRef: { name: 'vault-token', key: 'token' } },
              requestsPerSecond: 200,
            },
          },
        },
      },
    });
    ctx.log(`vault: creating ${n} ManagedSecrets over ${PATHS} KV paths`);
    await createManagedSecrets(ctx, namespace, n, (i) => ({
      storeRef: { name: 'vault' },
      refreshInterval: `${interval}s`,
      data: [{ secretKey: 'value', remoteRef: { key: `bench/path-${i % PATHS}`, property: 'value' } }],
    }));
    const progress = await new Progress(ctx.kube, namespace).start();
    const before = await apiserverRequests(ctx.cluster);
    const operator = await OperatorProcess.start(ctx, {
      namespaces: [namespace],
      // The namespaced store names the test Vault: an address the admin allows. The refresh floor (10 s by
      // default) at the scenario's interval, so that a short interval (the CI smoke run's 2 s) is honoured.
      args: ['--allowed-endpoints', vault.address, `--min-refresh-interval=${interval}s`],
    });
    try {
      const at = await progress.waitAll(n, timeoutFor(n));
      const coldSamples = await operator.metrics();
      const first = operatorCounters(coldSamples);
      const coldApi = requestFigures(diffRequests(await apiserverRequests(ctx.cluster), before));
      // HTTP requests to Vault: the provider's own operations (kv.read, token.lookup, …), not the controller's
      // count of ProviderClient calls (getValue, check), which lands in the same metric.
      const vaultRequests = (samples: typeof coldSamples) =>
        samples
          .filter(
            (s) =>
              s.name === 'secretsync_provider_requests_total' &&
              s.labels.provider === 'vault' &&
              (s.labels.operation ?? '').includes('.'),
          )
          .reduce((total, s) => total + s.value, 0);
      const coldVault = vaultRequests(coldSamples);
      // Skip to a steady refresh cycle, then count over two of them.
      await sleep(interval * 1000);
      const s0 = await operator.metrics();
      const c0 = operatorCounters(s0);
      const cycles = 2;
      await sleep(interval * cycles * 1000);
      const s1 = await operator.metrics();
      const c = diffCounters(operatorCounters(s1), c0);
      const { peakRssMiB } = await operator.stop();
      return {
        paths: PATHS,
        allReadySeconds: seconds(at - operator.startedAt),
        coldSyncVaultRequests: coldVault,
        coldSyncKeysRead: first.cacheMiss,
        coldSyncApiWrites: coldApi.apiWrites as number,
        refreshIntervalSeconds: interval,
        vaultRequestsPerCycle: round((vaultRequests(s1) - vaultRequests(s0)) / cycles, 1),
        keysReadPerCycle: round(c.cacheMiss / cycles, 1),
        syncsPerCycle: round((c.syncsUnchanged + c.syncsSynced) / cycles, 1),
        writesPerCycle: round(c.kubeWrites / cycles, 1),
        peakRssMiB: round(peakRssMiB, 1),
      };
    } finally {
      await operator.stop();
      await progress.stop();
    }
  } finally {
    await vault.stop();
  }
}
