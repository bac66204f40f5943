// The change relay with a real event source: two sharded operators consume one
// SQS queue (moto, fed by an EventBridge rule) as competing consumers, so each
// change event reaches one of them. Two ManagedSecrets read the same secret,
// one in a shard of each replica: every change must reach both Secrets within
// 2 s (refreshInterval 1h), whichever replica took the message.
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { expect } from 'chai';
import type { Metrics } from '../../../src/observability/metrics.js';
import { shardOf } from '../../../src/sharding/ownership.js';
import { StaticShardOwnership } from '../../../src/sharding/static.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  createMotoSecretsManagerStore,
  decoded,
  ensureNamespace,
  getSecret,
  startOperator,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';
import { EVENT_PATTERN, secretsManagerCall } from '../providers/aws-events.js';

const SHARDS = 4;
const client = () => adminClient(sharedCluster());

async function relayed(metrics: Metrics, what: 'published' | 'applied'): Promise<number> {
  const values = (await metrics.changeRelayEntries.get()).values;
  return values.filter((v) => v.labels.what === what).reduce((n, v) => n + v.value, 0);
}

describe('sharded change relay: SQS competing consumers (moto)', function () {
  this.timeout(120_000);
  const namespace = uniqueName('shard-relay-sqs');
  const secretName = uniqueName('relay/db');
  const heldByA = [0, 1];
  let a: RunningOperator | undefined;
  let b: RunningOperator | undefined;
  let sm: SecretsManagerClient;
  let sqs: SQSClient;
  let bus: EventBridgeClient;
  const pick = (prefix: string, onA: boolean) => {
    for (let i = 0; ; i++) {
      const name = `${prefix}-${i}`;
      if (heldByA.includes(shardOf(namespace, name, SHARDS)) === onA) return name;
    }
  };
  const onA = pick('db-a', true);
  const onB = pick('db-b', false);

  before(async () => {
    sm = new SecretsManagerClient(sharedMoto().clientConfig());
    sqs = new SQSClient(sharedMoto().clientConfig());
    bus = new EventBridgeClient(sharedMoto().clientConfig());
    await sm.send(new CreateSecretCommand({ Name: secretName, SecretString: 'v0' }));
    const queueName = uniqueName('relay-events');
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: queueName }))).QueueUrl ?? '';
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    const rule = uniqueName('relay');
    await bus.send(new PutRuleCommand({ Name: rule, EventPattern: JSON.stringify(EVENT_PATTERN) }));
    await bus.send(new PutTargetsCommand({ Rule: rule, Targets: [{ Id: 'queue', Arn: attrs.Attributes?.QueueArn }] }));

    await ensureNamespace(client(), namespace);
    await createMotoSecretsManagerStore(client(), namespace, 'sm', {
      extra: { events: { sqs: { queueUrl, endpoint: sharedMoto().endpoint } } },
    });
    for (const name of [onA, onB])
      await createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: {
          storeRef: { name: 'sm' },
          refreshInterval: '1h',
          data: [{ secretKey: 'value', remoteRef: { key: secretName } }],
        },
      });
    a = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      identity: 'sqs-a',
      sharding: { ownership: new StaticShardOwnership(SHARDS, heldByA) },
    });
    b = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      identity: 'sqs-b',
      sharding: { ownership: new StaticShardOwnership(SHARDS, [2, 3]) },
    });
    for (const name of [onA, onB]) await waitForSecretData(client(), namespace, name, (d) => d.value === 'v0', 30_000);
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    sm?.destroy();
    sqs?.destroy();
    bus?.destroy();
  });

  it('brings every change to both replicas’ Secrets within 2 s, whichever replica took the message', async () => {
    const latencies: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const value = `v${i}`;
      const out = await sm.send(new PutSecretValueCommand({ SecretId: secretName, SecretString: value }));
      const started = performance.now();
      const sent = await bus.send(
        new PutEventsCommand({
          Entries: [secretsManagerCall('PutSecretValue', { secretId: secretName }, { arn: out.ARN, versionId: 'v' })],
        }),
      );
      expect(sent.FailedEntryCount ?? 0).to.equal(0);
      for (const name of [onA, onB])
        await waitForSecretData(client(), namespace, name, (d) => d.value === value, 5_000);
      latencies.push(performance.now() - started);
    }
    console.log(`      change → both Secrets: ${latencies.map(Math.round).join(', ')} ms`);
    expect(Math.max(...latencies)).to.be.below(2_000);
    // Each message was taken by one replica and relayed by it: four entries published in all, each applied by the other.
    const published = (await relayed(a!.metrics, 'published')) + (await relayed(b!.metrics, 'published'));
    const applied = (await relayed(a!.metrics, 'applied')) + (await relayed(b!.metrics, 'applied'));
    expect(published).to.equal(4);
    expect(applied).to.equal(4);
    expect(decoded(await getSecret(client(), namespace, onB)).value).to.equal('v4');
  });
});
