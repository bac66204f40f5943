// Which identity, region and endpoint the queue's SQS client gets (events.sqs
// falling back to the store), and the store-side switch (hasSqsEvents).
import { expect } from 'chai';
import type { AnyStore, AwsCommonSpec, AwsEventsSpec } from '../../../../src/api/types.js';
import { awsParameterStoreProvider } from '../../../../src/providers/aws-parameter-store/index.js';
import { awsSecretsManagerProvider } from '../../../../src/providers/aws-secrets-manager/index.js';
import { StorePolicyError } from '../../../../src/providers/provider.js';
import { rejectionOf } from '../../helpers/index.js';
import { hasSqsEvents, queueClientSpec, regionOfQueueUrl } from '../../../../src/providers/aws/events/sqs-events.js';

const storeAuth = {
  serviceAccountRef: { name: 'app' },
};
const queueAuth = {
  secretRef: {
    accessKeyIdSecretRef: { name: 'q', key: 'id' },
    secretAccessKeySecretRef: { name: 'q', key: 'secret' },
  },
};
const STORE_ROLE = 'arn:aws:iam::123456789012:role/store';
const QUEUE_ROLE = 'arn:aws:iam::123456789012:role/queue';

function spec(sqs: Partial<AwsEventsSpec['sqs']>): AwsCommonSpec & { events: AwsEventsSpec } {
  return {
    region: 'eu-west-1',
    endpoint: 'https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com',
    auth: storeAuth,
    roleArn: STORE_ROLE,
    events: { sqs: { queueUrl: 'https://sqs.us-east-2.amazonaws.com/123456789012/events', ...sqs } },
  };
}

describe('AWS events: the queue client settings', () => {
  it("without auth or roleArn: the store's identity; never the store's endpoint (another service's)", () => {
    expect(queueClientSpec(spec({}))).to.deep.equal({ region: 'us-east-2', auth: storeAuth, roleArn: STORE_ROLE });
  });

  it("roleArn alone: the store's credentials assume the queue's role", () => {
    expect(queueClientSpec(spec({ roleArn: QUEUE_ROLE }))).to.deep.include({ auth: storeAuth, roleArn: QUEUE_ROLE });
  });

  it("auth: the queue's own identity, without the store's role", () => {
    const got = queueClientSpec(spec({ auth: queueAuth }));
    expect(got.auth).to.deep.equal(queueAuth);
    expect(got).to.not.have.property('roleArn');
    expect(queueClientSpec(spec({ auth: queueAuth, roleArn: QUEUE_ROLE })).roleArn).to.equal(QUEUE_ROLE);
  });

  it('region: events.sqs.region, else the queue URL’s, else the store’s; endpoint only from events.sqs', () => {
    expect(queueClientSpec(spec({ region: 'ap-south-1' })).region).to.equal('ap-south-1');
    const custom = queueClientSpec(
      spec({ queueUrl: 'http://127.0.0.1:5000/123456789012/q', endpoint: 'http://127.0.0.1:5000' }),
    );
    expect(custom).to.include({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:5000' });
  });

  it('reads the region of AWS queue URLs only', () => {
    expect(regionOfQueueUrl('https://sqs.eu-central-1.amazonaws.com/1/q')).to.equal('eu-central-1');
    expect(regionOfQueueUrl('https://us-west-2.queue.amazonaws.com/1/q')).to.equal('us-west-2');
    expect(regionOfQueueUrl('https://sqs.cn-north-1.amazonaws.com.cn/1/q')).to.equal('cn-north-1');
    expect(regionOfQueueUrl('https://sqs.eu-central-1.amazonaws.com.evil.example/1/q')).to.equal(undefined);
    expect(regionOfQueueUrl('not a url')).to.equal(undefined);
  });

  it('a store has an event source only with a queue URL', () => {
    expect(hasSqsEvents({})).to.equal(false);
    expect(hasSqsEvents({ events: { sqs: { queueUrl: '' } } })).to.equal(false);
    expect(hasSqsEvents(spec({}))).to.equal(true);
  });

  it("a namespaced store's events.sqs.endpoint must be allowed by --allowed-endpoints, like its other endpoints", async () => {
    const store = (endpoint: string): AnyStore => ({
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretStore',
      metadata: { name: 'aws', namespace: 'team-a' },
      spec: {
        provider: {
          awsSecretsManager: {
            region: 'eu-west-1',
            events: { sqs: { queueUrl: 'https://sqs.eu-west-1.amazonaws.com/1/q', endpoint } },
          },
        },
      },
    });
    const policy = { allowedEndpoints: ['https://vpce-1.sqs.eu-west-1.vpce.amazonaws.com'], localStoreRoot: undefined };
    const refused = await rejectionOf(awsSecretsManagerProvider.validateStore(store('http://169.254.169.254'), policy));
    expect(refused).to.be.instanceOf(StorePolicyError);
    expect(refused.message).to.contain('spec.provider.awsSecretsManager.events.sqs.endpoint');
    await awsSecretsManagerProvider.validateStore(store('https://vpce-1.sqs.eu-west-1.vpce.amazonaws.com'), policy);
    const ssm = store('http://169.254.169.254');
    ssm.spec.provider = { awsParameterStore: { ...ssm.spec.provider.awsSecretsManager! } };
    expect(await rejectionOf(awsParameterStoreProvider.validateStore(ssm, policy))).to.be.instanceOf(StorePolicyError);
  });
});
