import { EventBridgeClient, PutRuleCommand, PutTargetsCommand, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SQSClient, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
const cfg = { endpoint: 'http://127.0.0.1:45999', region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
const eb = new EventBridgeClient(cfg); const sqs = new SQSClient(cfg);
const q = await sqs.send(new CreateQueueCommand({ QueueName: 'events' }));
const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl, AttributeNames: ['QueueArn'] }));
console.log(q.QueueUrl, attrs.Attributes);
await eb.send(new PutRuleCommand({ Name: 'r', EventPattern: JSON.stringify({ source: ['aws.secretsmanager', 'aws.ssm'], 'detail-type': ['AWS API Call via CloudTrail', 'Parameter Store Change'] }) }));
await eb.send(new PutTargetsCommand({ Rule: 'r', Targets: [{ Id: 'q', Arn: attrs.Attributes!.QueueArn }] }));
const r = await eb.send(new PutEventsCommand({ Entries: [
  { Source: 'aws.secretsmanager', DetailType: 'AWS API Call via CloudTrail', Detail: JSON.stringify({ eventSource: 'secretsmanager.amazonaws.com', eventName: 'PutSecretValue', requestParameters: { secretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf' } }) },
  { Source: 'aws.ssm', DetailType: 'Parameter Store Change', Detail: JSON.stringify({ name: '/app/x', type: 'String', operation: 'Update' }) },
  { Source: 'other', DetailType: 'x', Detail: '{}' },
]}));
console.log(JSON.stringify(r));
const m = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
console.log(JSON.stringify(m.Messages, null, 1));
