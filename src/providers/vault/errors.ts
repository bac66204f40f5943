// Vault's HTTP answers in the provider error contract. Vault says little in
// its status codes and a lot in its `errors` array, which may quote the
// request (a path, a field): messages here carry the method, the path the
// operator asked for, the HTTP status and our classification, never the
// answer's body, a value or a token. The `errors` text is kept on the error
// (not enumerable, not in the message) for callers that must tell two 400s
// apart (a check-and-set mismatch).
import { SecretsyncError, boundedText } from '../../api/errors.js';
import { Reasons } from '../../api/types.js';
import { KeyNotFoundError, ProviderConfigError, ProviderError } from '../provider.js';
import { isNodeNetworkError } from '../network-errors.js';

/** Condition reasons specific to Vault (declared with the others in Reasons, src/api/types.ts). */
export const VaultReasons = {
  VaultSealed: Reasons.VaultSealed,
  PermissionDenied: Reasons.PermissionDenied,
  VersionNotFound: Reasons.VersionNotFound,
} as const;

/** A Retry-After further away than this is taken as this (a confused server must not park a store for days). */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * What a failed request left behind, without its body: the status (absent for
 * a network failure), whether the address counts as unavailable, and the
 * network error code. The `cause` of the mapped error, so failover and the
 * breakers can tell availability failures from the rest.
 */
export class VaultFailure extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly availability: boolean,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'VaultFailure';
  }
}

/** Vault answered that it is sealed: transient, recovers on unseal; another address may answer meanwhile. */
export class VaultSealedError extends SecretsyncError {
  constructor(message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(VaultReasons.VaultSealed, 'transient', message, options);
    this.name = 'VaultSealedError';
  }
}

/** A 404: the path (or, with a body that says so, the version) is not there. */
export class VaultNotFoundError extends KeyNotFoundError {
  /** The `data` of the 404's body (KV v2 answers a deleted version with its metadata); never shown. */
  declare readonly body: unknown;
  constructor(message: string, key: string, body: unknown) {
    super(message, key);
    this.name = 'VaultNotFoundError';
    Object.defineProperty(this, 'body', { value: body, enumerable: false });
  }
}

/** A 4xx other than 403/404/412/429 (a malformed request, a check-and-set mismatch). */
export class VaultRequestError extends ProviderError {
  declare readonly vaultErrors: readonly string[];
  constructor(
    message: string,
    readonly status: number,
    vaultErrors: readonly string[],
    cause: VaultFailure,
  ) {
    super(message, { cause });
    this.name = 'VaultRequestError';
    Object.defineProperty(this, 'vaultErrors', { value: vaultErrors, enumerable: false });
  }
}

/** Vault refused: a policy lacks the capability, or the token is no longer valid (the client tells them apart). */
export class VaultPermissionError extends ProviderConfigError {
  constructor(message: string) {
    // The client is fine (its token was checked, or is re-acquired behind it): a person must change a policy.
    super(message, { reason: VaultReasons.PermissionDenied, clientUnusable: false });
    this.name = 'VaultPermissionError';
  }
}

/** Node's timeout codes beyond the shared list (Vault is reached through node:https and fetch). */
const VAULT_TIMEOUT_CODES: ReadonlySet<string> = new Set(['ERR_CONNECT_TIMEOUT', 'ERR_REQUEST_TIMEOUT']);

/** TLS failures: the address answers but cannot be trusted. Not availability (another address would be the same setup). */
export function isTlsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    (code.startsWith('ERR_TLS_') ||
      code.startsWith('ERR_SSL_') ||
      code.includes('CERT') ||
      code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
      code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
      code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  );
}

/** Whether a network-level error (no answer) means the address is unavailable. */
export function isNetworkError(err: unknown): boolean {
  return isNodeNetworkError(err, VAULT_TIMEOUT_CODES);
}

/**
 * Whether an error means "this Vault address is unavailable, ask the next":
 * a network failure, a 5xx (sealed included), 429 or 412 (a standby behind).
 * Permission denied, not found, bad requests, a cancelled call: never.
 */
export function isVaultAvailabilityError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof VaultFailure) return e.availability;
    if (e instanceof VaultSealedError) return true;
    if (e instanceof SecretsyncError && !(e instanceof ProviderError)) return false;
    if (isNetworkError(e)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** `Retry-After` (seconds or an HTTP date), capped; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: () => number = Date.now): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Math.round(Number(text) * 1000);
  else {
    const at = Date.parse(text);
    if (Number.isFinite(at)) ms = Math.max(0, at - now());
  }
  return ms === undefined ? undefined : Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** The `errors` strings of a Vault error body (for classification only, never shown). */
export function vaultErrorsOf(body: unknown): string[] {
  const errors = (body as { errors?: unknown } | null)?.errors;
  return Array.isArray(errors) ? errors.filter((e): e is string => typeof e === 'string') : [];
}

export interface HttpAnswer {
  status: number;
  body: unknown;
  retryAfter?: string;
}

/**
 * An HTTP answer (not 2xx) as one of our errors. `what` is `Vault GET
 * v1/secret/data/app (vault.example:8200)`; `key` names the path in
 * not-found messages.
 */
export function mapVaultAnswer(answer: HttpAnswer, what: string, key: string): SecretsyncError {
  const { status } = answer;
  const errors = vaultErrorsOf(answer.body);
  const retryAfterMs = parseRetryAfter(answer.retryAfter);
  const retry = retryAfterMs !== undefined ? { retryAfterMs } : {};
  if (status === 404) {
    const data = (answer.body as { data?: unknown } | null)?.data;
    return new VaultNotFoundError(`${what}: not found (HTTP 404)`, key, data);
  }
  if (status === 401 || status === 403) return new VaultPermissionError(`${what}: permission denied (HTTP ${status})`);
  if (status === 503 && errors.some((e) => /vault is sealed/i.test(e))) {
    return new VaultSealedError(`${what}: Vault is sealed (HTTP 503)`, {
      cause: new VaultFailure('sealed', status, true),
      ...retry,
    });
  }
  const availability = status >= 500 || status === 429 || status === 412;
  const failure = new VaultFailure(`HTTP ${status}`, status, availability);
  if (availability) {
    const why = status === 429 ? 'throttled' : status === 412 ? 'a standby has not caught up' : 'server error';
    return new ProviderError(`${what}: ${why} (HTTP ${status})`, { cause: failure, ...retry });
  }
  return new VaultRequestError(`${what}: refused (HTTP ${status})`, status, errors, failure);
}

/** A request that got no answer (network, TLS, timeout) as a ProviderError; the code is shown, never a body. */
export function mapVaultNetworkError(err: unknown, what: string): SecretsyncError {
  if (err instanceof SecretsyncError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const codeText = typeof code === 'string' ? boundedText(code, 64) : undefined;
  if (isTlsError(err)) {
    // The address answered, but its certificate does not match the store's TLS settings: a person must fix them.
    return new ProviderConfigError(`${what}: TLS failed (${codeText ?? 'certificate not trusted'})`, {
      clientUnusable: true,
    });
  }
  const availability = isNetworkError(err) || codeText === undefined;
  const failure = new VaultFailure(codeText ?? 'network error', undefined, availability, codeText);
  return new ProviderError(
    `${what}: no answer (${codeText ?? boundedText(err instanceof Error ? err.message : 'error', 80)})`,
    {
      cause: failure,
    },
  );
}
