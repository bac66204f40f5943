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
