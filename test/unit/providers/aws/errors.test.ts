import { expect } from 'chai';
import {
  AwsFailureSummary,
  awsErrorName,
  isAvailabilityError,
  mapAwsError,
} from '../../../../src/providers/aws/errors.js';
import {
  DecryptError,
  KeyNotFoundError,
  ProviderConfigError,
  ProviderError,
} from '../../../../src/providers/provider.js';

/** An error shaped like an SDK service exception (name is the AWS error code). */
function awsError(name: string, message = 'something happened'): Error {
  return Object.assign(new Error(message), { name, $fault: 'client' });
}

const ctx = { service: 'Secrets Manager', operation: 'GetSecretValue', key: 'app/db', noun: 'secret' };

describe('aws error mapping', () => {
  for (const name of ['ResourceNotFoundException', 'ParameterNotFound', 'ParameterVersionNotFound']) {
    it(`${name} is a missing key, named in the message`, () => {
      const err = mapAwsError(awsError(name, "can't find the specified secret"), ctx);
      expect(err).to.be.instanceOf(KeyNotFoundError);
      expect((err as KeyNotFoundError).key).to.equal('app/db');
      expect(err.message).to.contain('"app/db"').and.contain(name);
    });
  }

  it('a secret marked for deletion is a missing key', () => {
    const err = mapAwsError(
      awsError(
        'InvalidRequestException',
        "You can't perform this operation on the secret because it was marked for deletion.",
      ),
      ctx,
    );
    expect(err).to.be.instanceOf(KeyNotFoundError);
  });

  for (const name of [
    'AccessDenied',
    'AccessDeniedException',
    'UnrecognizedClientException',
    'InvalidSignatureException',
    'ExpiredToken',
    'ExpiredTokenException',
    'CredentialsProviderError',
  ]) {
    it(`${name} is a configuration problem`, () => {
      const err = mapAwsError(awsError(name), ctx);
      expect(err).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.equal(`Secrets Manager GetSecretValue "app/db": ${name}: something happened`);
    });
  }

  it('throttling, server and network errors are retryable provider errors whose cause is a summary, not the SDK error', () => {
    for (const cause of [
      awsError('ThrottlingException'),
      awsError('InternalServiceError'),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
    ]) {
      const err = mapAwsError(cause, ctx);
      expect(err).to.be.instanceOf(ProviderError);
      expect(err.cause).to.be.instanceOf(AwsFailureSummary);
      expect(err.cause).to.not.equal(cause);
      // Still an availability failure for the failover machinery, through the summary.
      expect(isAvailabilityError(err)).to.equal(true);
      expect(err.message).to.contain(awsErrorName(cause) ?? 'missing name');
    }
  });

  it('passes our own errors through unchanged', () => {
    for (const own of [
      new KeyNotFoundError('x', 'k'),
      new ProviderConfigError('x'),
      new ProviderError('x'),
      new DecryptError('x'),
    ]) {
      expect(mapAwsError(own, ctx)).to.equal(own);
    }
  });

  it('reads the code from protocol shapes and caps long messages', () => {
    expect(awsErrorName({ __type: 'com.amazonaws.ssm#ParameterNotFound' })).to.equal('ParameterNotFound');
    expect(awsErrorName({ Code: 'AccessDenied' })).to.equal('AccessDenied');
    expect(awsErrorName(new Error('plain'))).to.equal(undefined);
    const err = mapAwsError(awsError('ThrottlingException', 'x'.repeat(5000)), ctx);
    expect(err.message.length).to.be.below(400);
  });

  it('without a key, the message has no quoted key', () => {
    const err = mapAwsError(awsError('ThrottlingException', 'Rate exceeded'), {
      service: 'Secrets Manager',
      operation: 'ListSecrets',
    });
    expect(err.message).to.equal('Secrets Manager ListSecrets: ThrottlingException: Rate exceeded');
  });
});
