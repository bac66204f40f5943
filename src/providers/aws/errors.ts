// AWS SDK errors in the provider contract: a missing key is KeyNotFoundError,
// unusable credentials are ProviderConfigError (a person must act), the rest is
// ProviderError (retried). Messages keep the AWS error name and name the key,
// never a value (AWS read APIs do not echo values; we also cap the length).
import { DecryptError, KeyNotFoundError, ProviderConfigError, ProviderError } from '../provider.js';

/** The key (or its version) does not exist. */
const NOT_FOUND = new Set([
  'ResourceNotFoundException',
  'ParameterNotFound',
  'ParameterVersionNotFound',
  'ParameterVersionLabelNotFound',
]);

/** Credentials or permissions: retrying will not help until someone changes a Secret, role or policy. */
const CONFIG = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnrecognizedClient',
  'UnrecognizedClientException',
  'InvalidSignature',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'InvalidClientTokenId',
  'MissingAuthenticationToken',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidIdentityToken',
  'IDPRejectedClaim',
  'IDPCommunicationError',
  'RegionDisabledException',
  'CredentialsProviderError',
  // Secrets Manager could not use the secret's KMS key: a key policy or grant is missing.
  'DecryptionFailure',
]);

const MAX_AWS_MESSAGE = 300;

export interface AwsErrorContext {
  /** `Secrets Manager`, `Parameter Store`, `STS`, `KMS`. */
  service: string;
  /** The API operation, such as `GetSecretValue`. */
  operation: string;
  /** The remote key (secret name, parameter name, role ARN) the request was about. */
  key?: string;
  /** How the key is described in a not-found message: `secret`, `parameter`. Default `key`. */
  noun?: string;
}

/** The AWS error code of an SDK error (`name` of a service exception), if it has one. */
export function awsErrorName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; Code?: unknown; code?: unknown; __type?: unknown };
  for (const candidate of [e.name, e.Code, e.__type, e.code]) {
    if (typeof candidate === 'string' && candidate.length > 0 && candidate !== 'Error') {
      // Some protocols send "namespace#Code".
      return candidate.includes('#') ? candidate.slice(candidate.lastIndexOf('#') + 1) : candidate;
    }
  }
  return undefined;
}

/** Whether an SDK error means the key is missing. */
export function isAwsNotFound(err: unknown): boolean {
  const name = awsErrorName(err);
  if (name === undefined) return false;
  if (NOT_FOUND.has(name)) return true;
  // A secret scheduled for deletion cannot be read: it is gone as far as a ManagedSecret is concerned.
  return name === 'InvalidRequestException' && /marked (for )?delet/i.test(messageOf(err));
}

/** Whether an SDK error means the credentials or permissions are wrong. */
export function isAwsConfigError(err: unknown): boolean {
  const name = awsErrorName(err);
  return name !== undefined && CONFIG.has(name);
}

/** Maps any error from an AWS call into the provider error contract. Our own error classes pass through. */
export function mapAwsError(err: unknown, context: AwsErrorContext): Error {
  if (
    err instanceof KeyNotFoundError ||
    err instanceof ProviderConfigError ||
    err instanceof ProviderError ||
    err instanceof DecryptError
  ) {
    return err;
  }
  const name = awsErrorName(err) ?? 'Error';
  const detail = messageOf(err);
  const about = context.key !== undefined ? ` "${context.key}"` : '';
  if (isAwsNotFound(err)) {
    const key = context.key ?? '';
    return new KeyNotFoundError(
      `${context.service}: ${context.noun ?? 'key'}${about} not found (${name}${detail ? `: ${detail}` : ''})`,
      key,
    );
  }
  const summary = `${context.service} ${context.operation}${about}: ${name}${detail ? `: ${detail}` : ''}`;
  if (isAwsConfigError(err)) return new ProviderConfigError(summary);
  return new ProviderError(summary, { cause: err });
}

function messageOf(err: unknown): string {
  const raw = err instanceof Error ? err.message : typeof err === 'string' ? err : '';
  const oneLine = raw.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_AWS_MESSAGE ? `${oneLine.slice(0, MAX_AWS_MESSAGE)}…` : oneLine;
}

/** Error codes of the network layer (Node's `code`, or the SDK's `name`) that mean the endpoint could not be reached. */
const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'NetworkingError',
]);

/** Throttling codes: reaching us means the SDK's own retries (adaptive mode) were used up. */
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ProvisionedThroughputExceededException',
  'BandwidthLimitExceeded',
]);

/** Server-side faults that some services send without a 5xx status in the error object. */
const SERVER_FAULT = new Set([
  'InternalFailure',
  'InternalServiceError',
  'InternalServiceErrorException',
  'InternalServerError',
  'InternalServerErrorException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'KMSInternalException',
  'DependencyTimeoutException',
]);

/**
 * Whether an error means the region (or endpoint) is unavailable, so another
 * region may answer: a network error, a 5xx answer, or throttling that outlived
 * the SDK's retries. Not found, access denied, bad credentials, invalid input,
 * an unusable ciphertext: never (another region would say the same, or must not
 * be asked). Follows `cause` (our ProviderError wraps the SDK error).
 */
export function isAvailabilityError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof KeyNotFoundError || e instanceof ProviderConfigError || e instanceof DecryptError) return false;
    if (typeof e !== 'object') return false;
    const o = e as {
      code?: unknown;
      name?: unknown;
      $metadata?: { httpStatusCode?: unknown };
      $response?: { statusCode?: unknown };
      cause?: unknown;
    };
    if (isAwsNotFound(e) || isAwsConfigError(e)) return false;
    const status = o.$metadata?.httpStatusCode ?? o.$response?.statusCode;
    if (typeof status === 'number') {
      if (status >= 500 || status === 429) return true;
      if (status >= 400) return THROTTLING.has(awsErrorName(e) ?? '');
    }
    for (const code of [o.code, o.name, awsErrorName(e)]) {
      if (typeof code !== 'string') continue;
      if (NETWORK.has(code) || THROTTLING.has(code) || SERVER_FAULT.has(code)) return true;
    }
    // AggregateError (several addresses tried, e.g. IPv4 and IPv6): unavailable when every one was.
    if (e instanceof AggregateError && e.errors.length > 0) return e.errors.every((x) => isAvailabilityError(x));
    // A bare network error from the HTTP layer, not an answer from the service.
    if (status === undefined && e instanceof Error && /socket hang up|ECONNREFUSED|ECONNRESET/.test(e.message)) {
      return true;
    }
    e = o.cause;
  }
  return false;
}
