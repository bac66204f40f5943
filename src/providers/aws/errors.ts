// AWS SDK errors in the provider contract: a missing key is KeyNotFoundError,
// rejected credentials and missing permissions are ProviderConfigError (a
// person must act; only rejected credentials make the client unusable), a
// cancelled call is the signal's error, the rest is ProviderError (retried,
// with the server's Retry-After when it sent one).
//
// Messages carry the AWS error code and the service's own short message, never
// a response body: a custom endpoint answering HTML (a proxy's error page, a
// hostile server) is reported by its HTTP status only. What ends up in status
// fields and Events comes from these messages.
import { SecretsyncError, boundedText } from '../../api/errors.js';
import { abortError } from '../../api/abort.js';
import { KeyNotFoundError, ProviderConfigError, ProviderError } from '../provider.js';
import { BARE_NETWORK_MESSAGE, NODE_NETWORK_ERROR_CODES } from '../network-errors.js';

/** The key (or its version) does not exist. */
const NOT_FOUND = new Set([
  'ResourceNotFoundException',
  'ParameterNotFound',
  'ParameterVersionNotFound',
  'ParameterVersionLabelNotFound',
]);

/**
 * The credentials themselves were refused (wrong, expired, revoked) or could
 * not be obtained: the client is unusable, and a new one reads the Secrets and
 * asks STS again.
 */
export const CREDENTIAL_ERRORS: ReadonlySet<string> = new Set([
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
  'CredentialsProviderError',
]);

/**
 * The credentials work but may not do this (a policy, a key policy, a disabled
 * STS region): a person must change a policy, and the client stays (its
 * credentials and its KMS data-key cache are fine).
 */
export const PERMISSION_ERRORS: ReadonlySet<string> = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'RegionDisabledException',
  // Secrets Manager could not use the secret's KMS key: a key policy or grant is missing.
  'DecryptionFailure',
]);

/** Longest service message kept (the code is kept whole, up to 64 characters). */
const MAX_AWS_MESSAGE = 160;
/** A Retry-After further away than this is taken as this (a hostile or confused server must not park a store for days). */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

export interface AwsErrorContext {
  /** `Secrets Manager`, `Parameter Store`, `STS`, `KMS`. */
  service: string;
  /** The API operation, such as `GetSecretValue`. */
  operation: string;
  /** The remote key (secret name, parameter name, role ARN) the request was about. */
  key?: string;
  /** How the key is described in a not-found message: `secret`, `parameter`. Default `key`. */
  noun?: string;
  /** The caller's signal: an aborted call ends with its error. */
  signal?: AbortSignal;
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
  if (isDeserializationError(err)) return false;
  const name = awsErrorName(err);
  if (name === undefined) return false;
  if (NOT_FOUND.has(name)) return true;
  // A secret scheduled for deletion cannot be read: it is gone as far as a ManagedSecret is concerned.
  return name === 'InvalidRequestException' && /marked (for )?delet/i.test(rawMessage(err));
}

/** Whether an SDK error means the credentials were refused (the client must be rebuilt). */
export function isAwsCredentialError(err: unknown): boolean {
  const name = awsErrorName(err);
  return name !== undefined && !isDeserializationError(err) && CREDENTIAL_ERRORS.has(name);
}

/** Whether an SDK error means the credentials or permissions are wrong. */
export function isAwsConfigError(err: unknown): boolean {
  const name = awsErrorName(err);
  return (
    name !== undefined && !isDeserializationError(err) && (CREDENTIAL_ERRORS.has(name) || PERMISSION_ERRORS.has(name))
  );
}

/** Whether the SDK could not make sense of the answer (HTML from a proxy, a broken body): its message quotes the body. */
export function isDeserializationError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if ((err as { $fault?: unknown }).$fault !== undefined) return false;
  return err.name === 'SyntaxError' || err.message.includes('Deserialization error');
}

/** Whether the service said to slow down (a throttling code, HTTP 429, or the SDK's throttling trait). */
export function isAwsThrottling(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { $retryable?: { throttling?: unknown }; $metadata?: { httpStatusCode?: unknown } };
  if (e.$retryable?.throttling === true || e.$metadata?.httpStatusCode === 429) return true;
  return !isDeserializationError(err) && THROTTLING.has(awsErrorName(err) ?? '');
}

/** The HTTP status of the answer, when there was one. */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { $metadata?: { httpStatusCode?: unknown }; $response?: { statusCode?: unknown } };
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * When the server asked to be called again: `Retry-After` (seconds, or an
 * HTTP date) or `x-amz-retry-after` (milliseconds), from the answer the SDK
 * kept on the error. Capped at MAX_RETRY_AFTER_MS; undefined when absent.
 */
export function retryAfterMsOf(err: unknown, now: () => number = Date.now): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const headers = (err as { $response?: { headers?: unknown } }).$response?.headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  let ms: number | undefined;
  for (const [name, raw] of Object.entries(headers as Record<string, unknown>)) {
    if (typeof raw !== 'string') continue;
    const value = raw.trim();
    const header = name.toLowerCase();
    if (header === 'x-amz-retry-after' && /^\d+$/.test(value)) {
      ms = Number(value);
    } else if (header === 'retry-after' && ms === undefined) {
      if (/^\d+(\.\d+)?$/.test(value)) ms = Math.round(Number(value) * 1000);
      else {
        const at = Date.parse(value);
        if (Number.isFinite(at)) ms = Math.max(0, at - now());
      }
    }
  }
  return ms === undefined ? undefined : Math.min(ms, MAX_RETRY_AFTER_MS);
}

/**
 * What a message may say about an AWS failure: the error code and the
 * service's own message, one line and short. An answer the SDK could not parse
 * is named by its HTTP status alone (its message would quote the body).
 */
export function describeAwsFailure(err: unknown): string {
  const status = httpStatusOf(err);
  let text: string;
  if (isDeserializationError(err)) {
    text =
      status !== undefined
        ? `HTTP ${status}, an answer the SDK could not read (body not shown)`
        : 'an answer the SDK could not read (body not shown)';
  } else {
    const code = boundedText(awsErrorName(err) ?? (err instanceof Error ? err.name : 'Error'), 64);
    const message = boundedText(rawMessage(err).split('\n')[0] ?? '', MAX_AWS_MESSAGE);
    text = message && message !== code ? `${code}: ${message}` : code;
    if ((code === 'Unknown' || code === 'UnknownError') && status !== undefined) text += ` (HTTP ${status})`;
  }
  const others = unavailableTargetsOf(err);
  return others.length > 0 ? `${text} (also unavailable: ${others.join(', ')})` : text;
}

/**
 * Maps any error from an AWS call into the provider error contract. Our own
 * errors pass through. The ProviderError's cause is a summary of the SDK error
 * (code, status, availability), not the SDK error itself, which holds the raw
 * answer.
 */
export function mapAwsError(err: unknown, context: AwsErrorContext): SecretsyncError {
  const about = context.key !== undefined ? ` "${context.key}"` : '';
  const what = `${context.service} ${context.operation}${about}`;
  // Cancelled: whatever the call ended with (the SDK's AbortError, the budget's or a race's), the signal says why.
  if (context.signal?.aborted) return abortError(context.signal, what);
  if (err instanceof SecretsyncError) return err;
  if (err instanceof Error && err.name === 'AbortError') {
    return new ProviderError(`${what}: the request was aborted`, { cause: summaryOf(err) });
  }
  const detail = describeAwsFailure(err);
  if (isAwsNotFound(err)) {
    return new KeyNotFoundError(
      `${context.service}: ${context.noun ?? 'key'}${about} not found (${detail})`,
      context.key ?? '',
    );
  }
  const summary = `${what}: ${detail}`;
  if (isAwsCredentialError(err)) return new ProviderConfigError(summary, { clientUnusable: true });
  if (isAwsConfigError(err)) return new ProviderConfigError(summary, { clientUnusable: false });
  const retryAfterMs = retryAfterMsOf(err);
  return new ProviderError(summary, { cause: summaryOf(err), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
}

/**
 * What a mapped error keeps of the SDK error it came from: enough to tell an
 * availability failure (network, 5xx, throttling) from the others, nothing of
 * the answer's body or headers.
 */
export class AwsFailureSummary extends Error {
  readonly code: string | undefined;
  readonly $metadata: { httpStatusCode?: number };
  readonly throttling: boolean;
  readonly availability: boolean;

  constructor(err: unknown) {
    super(describeAwsFailure(err));
    this.name = 'AwsFailureSummary';
    const code = (err as { code?: unknown } | null)?.code;
    this.code = typeof code === 'string' ? code : awsErrorName(err);
    const status = httpStatusOf(err);
    this.$metadata = status !== undefined ? { httpStatusCode: status } : {};
    this.throttling = isAwsThrottling(err);
    this.availability = isAvailabilityError(err);
  }
}

function summaryOf(err: unknown): AwsFailureSummary {
  return err instanceof AwsFailureSummary ? err : new AwsFailureSummary(err);
}

function rawMessage(err: unknown): string {
  return err instanceof Error ? err.message : typeof err === 'string' ? err : '';
}

/** Set by RegionalClients on the error it throws: the other targets that failed before it, as described there. */
const UNAVAILABLE_TARGETS = Symbol('secretsync.unavailableTargets');

/** Records on an error which other targets were tried and unavailable (they are named in its message later). */
export function markUnavailableTargets(err: unknown, targets: string[]): void {
  if (typeof err === 'object' && err !== null && targets.length > 0) {
    Object.defineProperty(err, UNAVAILABLE_TARGETS, { value: [...targets], configurable: true });
  }
}

function unavailableTargetsOf(err: unknown): string[] {
  if (typeof err !== 'object' || err === null) return [];
  const value = (err as { [UNAVAILABLE_TARGETS]?: unknown })[UNAVAILABLE_TARGETS];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Error codes of the network layer (Node's `code`, or the SDK's `name`) that mean the endpoint could not be reached. */
const NETWORK: ReadonlySet<string> = new Set([
  ...NODE_NETWORK_ERROR_CODES,
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
    if (e instanceof AwsFailureSummary) return e.availability;
    // Ours and not a backend failure (a missing key, a refused ciphertext, a policy, a cancelled call).
    if (e instanceof SecretsyncError && !(e instanceof ProviderError)) return false;
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
    if (status === undefined && e instanceof Error && BARE_NETWORK_MESSAGE.test(e.message)) {
      return true;
    }
    e = o.cause;
  }
  return false;
}
