// keysOfMessage: EventBridge events of Secrets Manager and Parameter Store →
// the remote keys (every form a ManagedSecret may use), and the bounds that
// keep a hostile message cheap.
import { expect } from 'chai';
import fc from 'fast-check';
import {
  MAX_EVENT_BYTES,
  MAX_KEYS_PER_MESSAGE,
  keysOfMessage,
  type EventVerdict,
} from '../../../../src/providers/aws/events/event-keys.js';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';

function event(source: string, detailType: string, detail: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version: '0',
    id: 'e1',
    'detail-type': detailType,
    source,
    account: ACCOUNT,
    time: '2026-12-05T08:00:00Z',
    region: REGION,
    resources: [],
    detail,
    ...extra,
  });
}

function cloudTrail(eventName: string, requestParameters: unknown, responseElements: unknown = null): string {
  return event('aws.secretsmanager', 'AWS API Call via CloudTrail', {
    eventSource: 'secretsmanager.amazonaws.com',
    eventName,
    awsRegion: REGION,
    requestParameters,
    responseElements,
  });
}

function keys(verdict: EventVerdict): string[] {
  expect(verdict.kind, JSON.stringify(verdict)).to.equal('keys');
  return verdict.kind === 'keys' ? verdict.keys : [];
}

const arnPrefix = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:`;

describe('AWS events: keysOfMessage', () => {
  describe('Secrets Manager', () => {
    it('a name: the name and its partial ARN', () => {
      expect(
        keys(keysOfMessage(cloudTrail('PutSecretValue', { secretId: 'app/db' }), 'secretsManager')),
      ).to.have.members(['app/db', `${arnPrefix}app/db`]);
    });

    it('a full ARN: the ARN, the name without the suffix, the partial ARN (and the tail, in case it is the name)', () => {
      const arn = `${arnPrefix}app/db-AbC123`;
      expect(keys(keysOfMessage(cloudTrail('RotateSecret', { secretId: arn }), 'secretsManager'))).to.have.members([
        arn,
        'app/db-AbC123',
        'app/db',
        `${arnPrefix}app/db`,
      ]);
    });

    it('the ARN in responseElements completes a call made by name', () => {
      const arn = `${arnPrefix}db-XyZ789`;
      const got = keys(
        keysOfMessage(cloudTrail('UpdateSecret', { secretId: 'db' }, { arn, name: 'db' }), 'secretsManager'),
      );
      expect(got).to.include.members(['db', arn, `${arnPrefix}db`]);
    });

    it('CreateSecret names the secret in requestParameters.name', () => {
      expect(keys(keysOfMessage(cloudTrail('CreateSecret', { name: 'new' }), 'secretsManager'))).to.include('new');
    });

    for (const name of ['DeleteSecret', 'RestoreSecret', 'TagResource', 'UntagResource', 'UpdateSecretVersionStage']) {
      it(`${name} is a change`, () => {
        expect(keys(keysOfMessage(cloudTrail(name, { secretId: 's' }), 'secretsManager'))).to.include('s');
      });
    }

    it('a service event (rotation succeeded) names the secret in additionalEventData', () => {
      const body = event('aws.secretsmanager', 'AWS Service Event via CloudTrail', {
        eventName: 'RotationSucceeded',
        additionalEventData: { SecretId: `${arnPrefix}rotated-AbC123` },
      });
      expect(keys(keysOfMessage(body, 'secretsManager'))).to.include('rotated');
    });

    it('the native Secret Label Updated event: the name and the ARN in resources', () => {
      const arn = `${arnPrefix}mySecret-a1b2c3`;
      const body = event(
        'aws.secretsmanager',
        'Secret Label Updated',
        { name: 'mySecret', labelUpdated: 'AWSCURRENT', versionId: 'v' },
        { resources: [arn] },
      );
      expect(keys(keysOfMessage(body, 'secretsManager'))).to.include.members(['mySecret', arn, `${arnPrefix}mySecret`]);
    });

    it('read-only calls, other sources and other detail-types are ignored', () => {
      expect(keysOfMessage(cloudTrail('GetSecretValue', { secretId: 's' }), 'secretsManager').kind).to.equal('ignored');
      expect(keysOfMessage(cloudTrail('ListSecrets', {}), 'secretsManager').kind).to.equal('ignored');
      expect(keysOfMessage(event('aws.ssm', 'Parameter Store Change', { name: 'p' }), 'secretsManager').kind).to.equal(
        'ignored',
      );
      expect(keysOfMessage(event('aws.secretsmanager', 'Something Else', {}), 'secretsManager').kind).to.equal(
        'ignored',
      );
    });

    it('a change call without a secret id is poison; an unknown call without one is ignored', () => {
      expect(keysOfMessage(cloudTrail('PutSecretValue', {}), 'secretsManager').kind).to.equal('poison');
      expect(keysOfMessage(cloudTrail('PutResourcePolicyOfTheFuture', {}), 'secretsManager').kind).to.equal('ignored');
      expect(
        keysOfMessage(event('aws.secretsmanager', 'AWS API Call via CloudTrail', {}), 'secretsManager').kind,
      ).to.equal('poison');
    });
  });

  describe('Parameter Store', () => {
    it('a Parameter Store Change: the name and its ARN', () => {
      const arn = `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/app/db/password`;
      const body = event(
        'aws.ssm',
        'Parameter Store Change',
        { name: '/app/db/password', operation: 'Update' },
        {
          resources: [arn],
        },
      );
      expect(keys(keysOfMessage(body, 'parameterStore'))).to.have.members(['/app/db/password', arn]);
    });

    it('a name without a leading slash, and an ARN with one segment (which may name "db" or "/db")', () => {
      expect(
        keys(
          keysOfMessage(
            event('aws.ssm', 'Parameter Store Change', { name: 'db', operation: 'Create' }),
            'parameterStore',
          ),
        ),
      ).to.have.members(['db', `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/db`]);
      const arn = `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/db`;
      const body = event('aws.ssm', 'AWS API Call via CloudTrail', {
        eventName: 'AddTagsToResource',
        requestParameters: { resourceType: 'Parameter', resourceId: arn },
      });
      expect(keys(keysOfMessage(body, 'parameterStore'))).to.have.members([arn, '/db', 'db']);
    });

    it('CloudTrail calls: DeleteParameters names several; tags of a document are ignored', () => {
      const del = event('aws.ssm', 'AWS API Call via CloudTrail', {
        eventName: 'DeleteParameters',
        requestParameters: { names: ['/a', '/b'] },
      });
      expect(keys(keysOfMessage(del, 'parameterStore'))).to.include.members(['/a', '/b']);
      const doc = event('aws.ssm', 'AWS API Call via CloudTrail', {
        eventName: 'AddTagsToResource',
        requestParameters: { resourceType: 'Document', resourceId: 'my-doc' },
      });
      expect(keysOfMessage(doc, 'parameterStore').kind).to.equal('ignored');
      const run = event('aws.ssm', 'AWS API Call via CloudTrail', { eventName: 'SendCommand', requestParameters: {} });
      expect(keysOfMessage(run, 'parameterStore').kind).to.equal('ignored');
    });

    it('a Parameter Store Change without a name is poison', () => {
      expect(
        keysOfMessage(event('aws.ssm', 'Parameter Store Change', { operation: 'Update' }), 'parameterStore').kind,
      ).to.equal('poison');
    });
  });

  describe('bounds and poison', () => {
    it('not JSON, not an object, no detail: poison, and the reason never quotes the body', () => {
      for (const body of ['hunter2', '[1,2]', '"x"', JSON.stringify({ source: 'aws.ssm', secret: 'hunter2' })]) {
        const verdict = keysOfMessage(body, 'parameterStore');
        expect(verdict.kind).to.equal('poison');
        expect(JSON.stringify(verdict)).to.not.contain('hunter2');
      }
    });

    it('a body larger than EventBridge sends is poison without being parsed', () => {
      const body = cloudTrail('PutSecretValue', { secretId: 's', pad: 'x'.repeat(MAX_EVENT_BYTES) });
      expect(keysOfMessage(body, 'secretsManager')).to.deep.equal({
        kind: 'poison',
        why: `larger than ${MAX_EVENT_BYTES} bytes`,
      });
    });

    it('more keys than allowed, or a huge array: "anything may have changed", with no key kept', () => {
      const resources = Array.from({ length: MAX_KEYS_PER_MESSAGE }, (_, i) => `${arnPrefix}s${i}-AbC123`);
      const verdict = keysOfMessage(
        event('aws.secretsmanager', 'AWS API Call via CloudTrail', { eventName: 'TagResource' }, { resources }),
        'secretsManager',
      );
      expect(verdict.kind).to.equal('all');
      const huge = Array.from({ length: 10_000 }, () => 'x');
      expect(
        keysOfMessage(event('aws.ssm', 'Parameter Store Change', { name: 'p' }, { resources: huge }), 'parameterStore')
          .kind,
      ).to.equal('all');
    });

    it('keys longer than any AWS name are dropped', () => {
      const long = `/${'a'.repeat(5000)}`;
      const verdict = keysOfMessage(event('aws.ssm', 'Parameter Store Change', { name: long }), 'parameterStore');
      expect(verdict).to.deep.equal({ kind: 'keys', keys: [] });
    });

    it('never throws, and never names more than MAX_KEYS_PER_MESSAGE keys, whatever the body', () => {
      const json = fc.jsonValue({ maxDepth: 4 });
      const shaped = fc.record({
        source: fc.constantFrom('aws.secretsmanager', 'aws.ssm', 'x'),
        'detail-type': fc.constantFrom(
          'AWS API Call via CloudTrail',
          'Parameter Store Change',
          'AWS Service Event via CloudTrail',
        ),
        resources: fc.array(fc.string(), { maxLength: 200 }),
        detail: fc.record({
          eventName: fc.constantFrom('PutSecretValue', 'DeleteParameters', 'GetSecretValue', 'X'),
          name: json,
          requestParameters: fc.dictionary(fc.constantFrom('secretId', 'name', 'names', 'resourceId'), json),
          responseElements: json,
          additionalEventData: json,
        }),
      });
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string(),
            json.map((v) => JSON.stringify(v)),
            shaped.map((v) => JSON.stringify(v)),
          ),
          (body) => {
            for (const service of ['secretsManager', 'parameterStore'] as const) {
              const verdict = keysOfMessage(body, service);
              if (verdict.kind === 'keys') expect(verdict.keys.length).to.be.at.most(MAX_KEYS_PER_MESSAGE);
            }
          },
        ),
        { numRuns: 500 },
      );
    });
  });
});
