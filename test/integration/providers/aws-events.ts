// The documented EventBridge rule and event shapes, shared by the provider
// tests (test/integration/providers/aws-events-sqs.test.ts) and the operator
// tests (test/integration/events/sqs.test.ts).
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { sharedMoto } from '../env.js';

/** moto's account. */
export const ACCOUNT = '123456789012';

/** The rule docs/events-aws.md ships (the EventPattern of its CloudFormation and Terraform snippets). */
export const EVENT_PATTERN = {
  source: ['aws.secretsmanager', 'aws.ssm'],
  'detail-type': [
    'AWS API Call via CloudTrail',
    'AWS Service Event via CloudTrail',
    'Secret Label Updated',
    'Parameter Store Change',
    'Parameter Store Policy Action',
  ],
};

/** A CloudTrail "AWS API Call" event of Secrets Manager as EventBridge delivers it. */
export function secretsManagerCall(
  eventName: string,
  requestParameters: Record<string, unknown>,
  responseElements: Record<string, unknown> | null = null,
): PutEventsRequestEntry {
  return {
    Source: 'aws.secretsmanager',
    DetailType: 'AWS API Call via CloudTrail',
    Detail: JSON.stringify({
      eventVersion: '1.08',
      eventSource: 'secretsmanager.amazonaws.com',
      eventName,
      awsRegion: sharedMoto().region,
      recipientAccountId: ACCOUNT,
      requestParameters,
      responseElements,
    }),
  };
}

/** A "Parameter Store Change" event. */
export function parameterChange(name: string, operation = 'Update'): PutEventsRequestEntry {
  return {
    Source: 'aws.ssm',
    DetailType: 'Parameter Store Change',
    Resources: [`arn:aws:ssm:${sharedMoto().region}:${ACCOUNT}:parameter${name.startsWith('/') ? name : `/${name}`}`],
    Detail: JSON.stringify({ name, type: 'SecureString', operation }),
  };
}
