// The `ibm` scenario: N ManagedSecrets over 100 arbitrary secrets of the IBM
// Cloud Secrets Manager contract server (tools/ibm-sm-server/, in the bench
// process; not the live service), API-key auth. What an IBM store costs:
// Secrets Manager requests in the cold sync and per refresh cycle (fetch
// coalescing should make a cycle cost about one read per secret, not one per
// ManagedSecret), IAM logins, and the time until every ManagedSecret is Ready.
// Requests are counted by the server itself, exactly.
import { API_VERSION } from '../../src/api/types.js';
import { IbmSecretsManagerServer } from '../../tools/testenv/index.js';
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

/** Secrets the ManagedSecrets share. */
const SECRETS = 100;
const API_KEY = 'bench-ibm-api-key';

export async function ibmScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const interval = ctx.options.refreshSeconds;
  ctx.log('ibm: starting the Secrets Manager contract server');
  const server = await IbmSecretsManagerServer.start();
  server.contract.addApiKey(API_KEY, 'iam-ServiceId-bench');
  const namespace = benchNamespace('ibm');
  try {
    await ensureNamespace(ctx.kube, namespace);
    const login = await fetch(`${server.iamEndpoint}/identity/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey: API_KEY }).toString(),
    });
    const { access_token: token } = (await login.json()) as { access_token: string };
    const ids: string[] = [];
    for (let s = 0; s < SECRETS; s++) {
      const res = await fetch(`${server.serviceUrl}/api/v2/secrets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ secret_type: 'arbitrary', name: `bench-${s}`, payload: `value-${s}` }),
      });
      ids.push(((await res.json()) as { id: string }).id);
    }
    await ctx.kube.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ibm-creds' }, stringData: { apikey: API_KEY } },
    });
    await ctx.kube.request('POST', storePath(namespace), {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: 'ibm' },
        spec: {
          provider: {
            ibmSecretsManager: {
              serviceUrl: server.serviceUrl,
              iamEndpoint: server.iamEndpoint,
              auth: { apiKeySecretRef: { name: 'ibm-creds', key: 'apikey' } },
              requestsPerSecond: 200,
            },
          },
        },
      },
    });
    ctx.log(`ibm: creating ${n} ManagedSecrets over ${SECRETS} secrets`);
    await createManagedSecrets(ctx, namespace, n, (i) => ({
      storeRef: { name: 'ibm' },
      refreshInterval: `${interval}s`,
      data: [{ secretKey: 'value', remoteRef: { key: ids[i % SECRETS] as string } }],
    }));
    const progress = await new Progress(ctx.kube, namespace).start();
    const before = await apiserverRequests(ctx.cluster);
    server.contract.requests.length = 0;
    const operator = await OperatorProcess.start(ctx, {
      namespaces: [namespace],
      // The store names the contract server: an endpoint the admin allows; the refresh floor at the interval.
      args: ['--allowed-endpoints', server.serviceUrl, `--min-refresh-interval=${interval}s`],
    });
    const smRequests = () => server.contract.requests.filter((r) => r.path.startsWith('/api/v2/')).length;
    const iamLogins = () => server.contract.requests.filter((r) => r.path === '/identity/token').length;
    try {
      const at = await progress.waitAll(n, timeoutFor(n));
      const first = operatorCounters(await operator.metrics());
      const coldApi = requestFigures(diffRequests(await apiserverRequests(ctx.cluster), before));
      const coldRequests = smRequests();
      // Skip to a steady refresh cycle, then count over two of them.
      await sleep(interval * 1000);
      const r0 = smRequests();
      const c0 = operatorCounters(await operator.metrics());
      const cycles = 2;
      await sleep(interval * cycles * 1000);
      const c = diffCounters(operatorCounters(await operator.metrics()), c0);
      const r1 = smRequests();
      const { peakRssMiB } = await operator.stop();
      return {
        secrets: SECRETS,
        allReadySeconds: seconds(at - operator.startedAt),
        coldSyncIbmRequests: coldRequests,
        coldSyncKeysRead: first.cacheMiss,
        coldSyncApiWrites: coldApi.apiWrites as number,
        iamLogins: iamLogins(),
        refreshIntervalSeconds: interval,
        ibmRequestsPerCycle: round((r1 - r0) / cycles, 1),
        keysReadPerCycle: round(c.cacheMiss / cycles, 1),
        syncsPerCycle: round((c.syncsUnchanged + c.syncsSynced) / cycles, 1),
        peakRssMiB: round(peakRssMiB, 1),
      };
    } finally {
      await operator.stop();
      await progress.stop();
    }
  } finally {
    await server.stop();
  }
}
