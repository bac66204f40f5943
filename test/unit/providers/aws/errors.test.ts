import { expect } from 'chai';
import { DeadlineError } from '../../../../src/api/errors.js';
import {
  AwsFailureSummary,
  MAX_RETRY_AFTER_MS,
  awsErrorName,
  describeAwsFailure,
  isAvailabilityError,
  mapAwsError,
  retryAfterMsOf,
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

  it('only refused credentials make the client unusable; a missing permission keeps it (and its caches)', () => {
    for (const name of [
      'ExpiredToken',
      'ExpiredTokenException',
      'InvalidClientTokenId',
      'UnrecognizedClientException',
    ]) {
      const err = mapAwsError(awsError(name), ctx);
      expect(err.clientUnusable, name).to.equal(true);
      expect(err.retry, name).to.equal('transient');
    }
    for (const name of ['AccessDenied', 'AccessDeniedException', 'DecryptionFailure', 'RegionDisabledException']) {
      const err = mapAwsError(awsError(name), ctx);
      expect(err, name).to.be.instanceOf(ProviderConfigError);
      expect(err.clientUnusable, name).to.equal(false);
      expect(err.retry, name).to.equal('transient');
    }
    for (const cause of [
      awsError('ThrottlingException'),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('a request has exceeded the configured 10000 ms requestTimeout'), {
        name: 'TimeoutError',
        code: 'ETIMEDOUT',
      }),
    ])
      expect(mapAwsError(cause, ctx).clientUnusable, cause.name).to.equal(false);
  });

  it('throttling carries the server’s Retry-After (seconds, an HTTP date or x-amz-retry-after), capped', () => {
    const throttled = (headers: Record<string, string>, status = 400) =>
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $fault: 'client',
        $metadata: { httpStatusCode: status },
        $response: { statusCode: status, headers },
      });
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMsOf(throttled({ 'retry-after': '7' }))).to.equal(7000);
    expect(retryAfterMsOf(throttled({ 'Retry-After': 'Thu, 01 Jan 2026 00:00:30 GMT' }), () => now)).to.equal(30_000);
    expect(retryAfterMsOf(throttled({ 'x-amz-retry-after': '1500', 'retry-after': '9' }))).to.equal(1500);
    expect(retryAfterMsOf(throttled({ 'retry-after': '999999999' }))).to.equal(MAX_RETRY_AFTER_MS);
    expect(retryAfterMsOf(throttled({ 'retry-after': 'soon' }))).to.equal(undefined);
    expect(retryAfterMsOf(throttled({}))).to.equal(undefined);

    const err = mapAwsError(throttled({ 'retry-after': '7' }), ctx);
    expect(err).to.be.instanceOf(ProviderError);
    expect(err.retryAfterMs).to.equal(7000);
    expect(err.clientUnusable).to.equal(false);
    expect((err.cause as AwsFailureSummary).throttling).to.equal(true);
    // A 503 with Retry-After is honoured the same way.
    const unavailable = Object.assign(new Error('UnknownError'), {
      name: 'Unknown',
      $fault: 'server',
      $metadata: { httpStatusCode: 503 },
      $response: { statusCode: 503, headers: { 'retry-after': '2' } },
    });
    const mapped = mapAwsError(unavailable, ctx);
    expect(mapped.retryAfterMs).to.equal(2000);
    expect(mapped.message).to.equal('Secrets Manager GetSecretValue "app/db": Unknown: UnknownError (HTTP 503)');
  });

  it('an answer the SDK could not parse is named by its status only: the body never reaches a message', () => {
    const body = '<html><body>db password=hunter2 token=supersecretvalue</body></html>';
    // What the SDK throws for an HTML answer to a JSON protocol: JSON.parse quotes the body's start.
    const syntax = Object.assign(
      new SyntaxError(
        `Unexpected token '<', "${body.slice(0, 10)}"... is not valid JSON\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.`,
      ),
      { $metadata: { httpStatusCode: 500 }, $response: { statusCode: 500, headers: {}, body } },
    );
    const xml = Object.assign(
      new Error('@aws-sdk XML parse error: unexpected content.\n  Deserialization error: to see the raw response'),
      { $metadata: { httpStatusCode: 502 } },
    );
    for (const [raw, status] of [
      [syntax, 500],
      [xml, 502],
    ] as const) {
      const err = mapAwsError(raw, ctx);
      expect(err).to.be.instanceOf(ProviderError);
      expect(err.message).to.equal(
        `Secrets Manager GetSecretValue "app/db": HTTP ${status}, an answer the SDK could not read (body not shown)`,
      );
      expect(err.message).to.not.contain('<html').and.not.contain('hunter2');
      expect(JSON.stringify(err.cause)).to.not.contain('hunter2');
      expect(isAvailabilityError(err)).to.equal(true);
    }
  });

  it('a service message is one short line', () => {
    const err = mapAwsError(awsError('InternalFailure', `line one\nline two ${'x'.repeat(1000)}`), ctx);
    expect(err.message).to.not.contain('line two');
    expect(describeAwsFailure(awsError('X'.repeat(500), 'm')).length).to.be.below(80);
  });

  it('a call cancelled through its signal ends with the signal’s error, which no breaker counts', () => {
    const controller = new AbortController();
    controller.abort(new DeadlineError('sync of team-a/db passed its 60s deadline'));
    const abortErr = Object.assign(new Error('Request aborted'), { name: 'AbortError' });
    const err = mapAwsError(abortErr, { ...ctx, signal: controller.signal });
    expect(err).to.be.instanceOf(DeadlineError);
    expect(err.message).to.equal('sync of team-a/db passed its 60s deadline');
    expect(isAvailabilityError(err)).to.equal(false);
    const plain = new AbortController();
    plain.abort();
    const other = mapAwsError(abortErr, { ...ctx, signal: plain.signal });
    expect(other).to.be.instanceOf(DeadlineError);
    expect(other.message).to.contain('Secrets Manager GetSecretValue "app/db"');
  });

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
