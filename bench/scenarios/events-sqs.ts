// The SQS part of the `events` benchmark (issue 15): N ManagedSecrets over 100
// Secrets Manager keys with refreshInterval 1h on a store with `events.sqs`; a
// real EventBridge rule (moto) routes each change's CloudTrail event to the
// queue. Measured: change → Secret latency (every reader of the changed key),
// backend reads per change, and backend requests per hour at rest (queue polls
// only), next to the same N polling every refreshSeconds without events.
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import { API_VERSION } from '../../src/api/types.js';
import { OperatorProcess, benchNamespace, ensureNamespace, type BenchContext, type Figures } from '../lib/context.js';
import { Progress, createManagedSecrets, msName, storePath, timeoutFor } from '../lib/fixtures.js';
import { percentile, round, seconds, sleep, sum, type Sample } from '../lib/util.js';

const KEYS = 100;
const CHANGE_TIMEOUT_MS = 10_000;
/** How long the store is watched at rest to count its requests (three long polls of 20 s and a bit). */
const REST_MS = 65_000;

const READS = ['GetSecretValue', 'BatchGetSecretValue'];

function backendRequests(samples: readonly Sample[], operations?: readonly string[]): number {
  return (operations ?? [undefined]).reduce(
    (n, operation) =>
      n +
      sum(samples, 'secretsync_provider_requests_total', {
        provider: 'awsSecretsManager',
        ...(operation ? { operation } : {}),
      }),
    0,
  );
}

/** A namespace with moto keys and a Secrets Manager store, with `events` when given. */
async function smNamespace(ctx: BenchContext, scenario: string, events?: object): Promise<string> {
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
          awsSecretsManager: {
            region: moto.region,
            endpoint: moto.endpoint,
            requestsPerSecond: 50,
            auth: {
              secretRef: {
                accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id' },
                secretAccessKeySecretRef: { name: 'aws-creds', key: 'secret-access-key' },
              },
            },
            ...(events ? { events } : {}),
          },
        },
      },
    },
  });
  return namespace;
}

/** Runs N readers of KEYS keys at `refreshInterval` until all are Ready; returns the operator and the watch. */
async function startReaders(
  ctx: BenchContext,
  namespace: string,
  n: number,
  refreshInterval: string,
): Promise<{ operator: OperatorProcess; progress: Progress; readyAt: number }> {
  const moto = await ctx.moto();
  await createManagedSecrets(ctx, namespace, n, (i) => ({
    storeRef: { name: 'aws' },
    refreshInterval,
    data: [{ secretKey: 'value', remoteRef: { key: `${namespace}/key-${i % KEYS}` } }],
  }));
  const progress = await new Progress(ctx.kube, namespace).start();
  const operator = await OperatorProcess.start(ctx, {
    namespaces: [namespace],
    args: ['--allowed-endpoints', moto.endpoint],
  });
  const readyAt = await progress.waitAll(n, timeoutFor(n));
  return { operator, progress, readyAt };
}

/** Backend requests per hour over REST_MS of quiet, extrapolated. */
async function requestsPerHourAtRest(
  operator: OperatorProcess,
  restMs: number,
): Promise<{ all: number; reads: number }> {
  const before = await operator.metrics();
  await sleep(restMs);
  const after = await operator.metrics();
  const perHour = (count: number) => round((count * 3_600_000) / restMs, 0);
  return {
    all: perHour(backendRequests(after) - backendRequests(before)),
    reads: perHour(backendRequests(after, READS) - backendRequests(before, READS)),
  };
}

/** `restMs`: how long each operator is watched at rest (the smoke test uses less). */
export async function eventsSqsScenario(ctx: BenchContext, n: number, restMs = REST_MS): Promise<Figures> {
  // Changes made one by one (each waits for all the key's readers, up to CHANGE_TIMEOUT_MS).
  const CHANGES = ctx.options.changes;
  const moto = await ctx.moto();
  const sm = new SecretsManagerClient(moto.clientConfig());
  const sqs = new SQSClient(moto.clientConfig());
  const bus = new EventBridgeClient(moto.clientConfig());
  try {
    // The queue and the rule docs/events-aws.md ships.
    const queueName = `secretsync-bench-${randomBytes(4).toString('hex')}`;
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: queueName }))).QueueUrl ?? '';
    const queueArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    await bus.send(
      new PutRuleCommand({
        Name: queueName,
        EventPattern: JSON.stringify({
          source: ['aws.secretsmanager', 'aws.ssm'],
          'detail-type': [
            'AWS API Call via CloudTrail',
            'AWS Service Event via CloudTrail',
            'Secret Label Updated',
            'Parameter Store Change',
            'Parameter Store Policy Action',
          ],
        }),
      }),
    );
    await bus.send(new PutTargetsCommand({ Rule: queueName, Targets: [{ Id: 'queue', Arn: queueArn }] }));

    const namespace = await smNamespace(ctx, 'events-sqs', {
      sqs: { queueUrl, endpoint: moto.endpoint },
      fallbackRefreshInterval: '1m',
    });
    for (let k = 0; k < KEYS; k++)
      await sm.send(new CreateSecretCommand({ Name: `${namespace}/key-${k}`, SecretString: 'v0' }));
    ctx.log(`events-sqs: ${n} ManagedSecrets over ${KEYS} keys, refreshInterval 1h, events from SQS`);
    const { operator, progress, readyAt } = await startReaders(ctx, namespace, n, '1h');
    const latencies: number[] = [];
    let missed = 0;
    let readsPerChange = 0;
    let rest = { all: 0, reads: 0 };
    let peakRssMiB = Number.NaN;
    try {
      // Readers of key k: ManagedSecrets i with i % KEYS === k.
      const readersOf = (k: number) =>
        Array.from({ length: Math.ceil((n - k) / KEYS) }, (_, j) => msName(k + j * KEYS));
      // Let the first long poll start, as in steady state.
      await sleep(1_000);
      const before = await operator.metrics();
      for (let c = 0; c < CHANGES; c++) {
        // Keys that have readers (all of them from N = KEYS on).
        const k = c % Math.min(KEYS, n);
        const value = `v-${c}-${randomBytes(6).toString('hex')}`;
        const waiting = new Set(readersOf(k));
        const start = Date.now();
        const done = new Promise<void>((resolve) => {
          const off = progress.onSecretUpdate((s) => {
            const got = s.data?.value === undefined ? undefined : Buffer.from(s.data.value, 'base64').toString('utf8');
            if (got !== value || !waiting.delete(s.metadata.name)) return;
            latencies.push(Date.now() - start);
            if (waiting.size === 0) {
              off();
              resolve();
            }
          });
          setTimeout(() => {
            off();
            resolve();
          }, CHANGE_TIMEOUT_MS).unref();
        });
        const out = await sm.send(
          new PutSecretValueCommand({ SecretId: `${namespace}/key-${k}`, SecretString: value }),
        );
        await bus.send(
          new PutEventsCommand({
            Entries: [
              {
                Source: 'aws.secretsmanager',
                DetailType: 'AWS API Call via CloudTrail',
                Detail: JSON.stringify({
                  eventSource: 'secretsmanager.amazonaws.com',
                  eventName: 'PutSecretValue',
                  awsRegion: moto.region,
                  requestParameters: { secretId: `${namespace}/key-${k}` },
                  responseElements: { arn: out.ARN, versionId: out.VersionId },
                }),
              },
            ],
          }),
        );
        await done;
        missed += waiting.size;
      }
      readsPerChange = round(
        (backendRequests(await operator.metrics(), READS) - backendRequests(before, READS)) / CHANGES,
        2,
      );
      ctx.log(`events-sqs: at rest for ${restMs / 1000} s`);
      rest = await requestsPerHourAtRest(operator, restMs);
      ({ peakRssMiB } = await operator.stop());
    } finally {
      await operator.stop();
      await progress.stop();
    }

    // The same N polling every refreshSeconds, without events: what events save at rest.
    const pollNamespace = await smNamespace(ctx, 'events-sqs-poll');
    for (let k = 0; k < KEYS; k++)
      await sm.send(new CreateSecretCommand({ Name: `${pollNamespace}/key-${k}`, SecretString: 'v0' }));
    const interval = `${ctx.options.refreshSeconds}s`;
    ctx.log(`events-sqs: the same ${n} ManagedSecrets polling every ${interval}`);
    const polling = await startReaders(ctx, pollNamespace, n, interval);
    let pollRest = { all: 0, reads: 0 };
    try {
      await sleep(ctx.options.refreshSeconds * 1000);
      pollRest = await requestsPerHourAtRest(polling.operator, restMs);
    } finally {
      await polling.operator.stop();
      await polling.progress.stop();
    }

    return {
      keys: KEYS,
      changes: CHANGES,
      allReadySeconds: seconds(readyAt - operator.startedAt),
      p50Ms: percentile(latencies, 50),
      p95Ms: percentile(latencies, 95),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.length > 0 ? Math.max(...latencies) : Number.NaN,
      missed,
      backendReadsPerChange: readsPerChange,
      requestsPerHourAtRest: rest.all,
      readsPerHourAtRest: rest.reads,
      pollingRefreshSeconds: ctx.options.refreshSeconds,
      pollingRequestsPerHourAtRest: pollRest.all,
      peakRssMiB: round(peakRssMiB, 1),
    };
  } finally {
    sm.destroy();
    sqs.destroy();
    bus.destroy();
  }
}
