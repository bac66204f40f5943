import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { KmsEncryptor, type DataKey } from '../../src/providers/aws-kms/encryptor.js';
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
import { API_VERSION } from '../../src/api/types.js';
import { range, round, seconds, sleep, sum } from '../lib/util.js';

/** A namespace with moto credentials and a store of the given provider block. */
async function awsNamespace(
  ctx: BenchContext,
  scenario: string,
  provider: string,
  extra: object = {},
): Promise<string> {
  const moto = await ctx.moto();
  const namespace = benchNamespace(scenario);
  await ensureNamespace(ctx.kube, namespace);
  await ctx.kube.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'aws-creds' },
      stringData: { 'access-key-id': 'testing', 'secret-access-key': 'testing' },
    },
  });
  await ctx.kube.request('POST', storePath(namespace), {
    body: {
      apiVersion: API_VERSION,
      kind: 'SecretStore',
      metadata: { name: 'aws' },
      spec: {
        provider: {
          [provider]: {
            region: moto.region,
            endpoint: moto.endpoint,
            auth: {
              secretRef: {
                accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id' },
                secretAccessKeySecretRef: { name: 'aws-creds', key: 'secret-access-key' },
              },
            },
            ...extra,
          },
        },
      },
    },
  });
  return namespace;
}

/**
 * 7. kms: N ManagedSecrets whose inline envelope ciphertexts share 10 data
 * keys: KMS Decrypt calls for one full sync (target: about 10, not N).
 */
export async function kmsScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const DATA_KEYS = 10;
  const moto = await ctx.moto();
  const namespace = await awsNamespace(ctx, 'kms', 'awsKms');
  const kms = new KMSClient(moto.clientConfig());
  const keyId = (await kms.send(new CreateKeyCommand({ Description: 'secretsync bench' }))).KeyMetadata?.KeyId ?? '';
  const encryptor = new KmsEncryptor(kms);
  const dataKeys: DataKey[] = [];
  for (let k = 0; k < DATA_KEYS; k++) dataKeys.push(await encryptor.generateDataKey(keyId, 'namespace', { namespace }));
  const ciphertexts = await Promise.all(
    range(n).map((i) =>
      encryptor.encrypt(`value-${i}`, {
        keyId,
        scope: 'namespace',
        binding: { namespace },
        dataKey: dataKeys[i % DATA_KEYS],
      }),
    ),
  );
  for (const dk of dataKeys) dk.destroy();
  kms.destroy();
  ctx.log(`kms: creating ${n} ManagedSecrets over ${DATA_KEYS} data keys`);
  await createManagedSecrets(ctx, namespace, n, (i) => ({
    storeRef: { name: 'aws' },
    data: [{ secretKey: 'value', ciphertext: ciphertexts[i] as string }],
  }));
  const progress = await new Progress(ctx.kube, namespace).start();
  const operator = await OperatorProcess.start(ctx, {
    namespaces: [namespace],
    // The namespaced store names moto: an endpoint the admin allows.
    args: ['--allowed-endpoints', moto.endpoint],
  });
  try {
    const at = await progress.waitAll(n, timeoutFor(n));
    const samples = await operator.metrics();
    const decrypts = sum(samples, 'secretsync_provider_requests_total', { operation: 'Decrypt' });
    const { peakRssMiB } = await operator.stop();
    return {
      dataKeys: DATA_KEYS,
      allReadySeconds: seconds(at - operator.startedAt),
      kmsDecryptCalls: decrypts,
      kmsCallsTotal: sum(samples, 'secretsync_provider_requests_total', { provider: 'awsKms' }),
      peakRssMiB: round(peakRssMiB, 1),
    };
  } finally {
    await operator.stop();
    await progress.stop();
  }
}

/**
 * 8. fan-in: N ManagedSecrets over 50 Secrets Manager keys: backend reads per
 * refresh cycle (target: about 50).
 */
export async function fanInScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const KEYS = 50;
  const interval = ctx.options.refreshSeconds;
  const moto = await ctx.moto();
  const namespace = await awsNamespace(ctx, 'fan-in', 'awsSecretsManager', { requestsPerSecond: 50 });
  const sm = new SecretsManagerClient(moto.clientConfig());
  for (let k = 0; k < KEYS; k++)
    await sm.send(new CreateSecretCommand({ Name: `${namespace}/key-${k}`, SecretString: `value-${k}` }));
  sm.destroy();
  ctx.log(`fan-in: creating ${n} ManagedSecrets over ${KEYS} Secrets Manager keys`);
  await createManagedSecrets(ctx, namespace, n, (i) => ({
    storeRef: { name: 'aws' },
    refreshInterval: `${interval}s`,
    data: [{ secretKey: 'value', remoteRef: { key: `${namespace}/key-${i % KEYS}` } }],
  }));
  const progress = await new Progress(ctx.kube, namespace).start();
  const before = await apiserverRequests(ctx.cluster);
  const operator = await OperatorProcess.start(ctx, {
    namespaces: [namespace],
    // The namespaced store names moto: an endpoint the admin allows.
    args: ['--allowed-endpoints', moto.endpoint],
  });
  try {
    const at = await progress.waitAll(n, timeoutFor(n));
    const first = operatorCounters(await operator.metrics());
    const coldApi = requestFigures(diffRequests(await apiserverRequests(ctx.cluster), before));
    // Skip to a steady refresh cycle, then count over two of them.
    await sleep(interval * 1000);
    const c0 = operatorCounters(await operator.metrics());
    const cycles = 2;
    await sleep(interval * cycles * 1000);
    const c = diffCounters(operatorCounters(await operator.metrics()), c0);
    const { peakRssMiB } = await operator.stop();
    return {
      keys: KEYS,
      allReadySeconds: seconds(at - operator.startedAt),
      coldSyncKeysRead: first.cacheMiss,
      coldSyncBackendCalls: first.providerReads,
      coldSyncApiWrites: coldApi.apiWrites as number,
      refreshIntervalSeconds: interval,
      keysReadPerCycle: round(c.cacheMiss / cycles, 1),
      backendCallsPerCycle: round(c.providerReads / cycles, 1),
      syncsPerCycle: round((c.syncsUnchanged + c.syncsSynced) / cycles, 1),
      writesPerCycle: round(c.kubeWrites / cycles, 1),
      peakRssMiB: round(peakRssMiB, 1),
    };
  } finally {
    await operator.stop();
    await progress.stop();
  }
}
