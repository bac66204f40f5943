// The HTTP layer of the ibmSecretsManager provider: one JSON request to a
// Secrets Manager instance or to IAM, with a deadline per attempt and the
// caller's signal, 429 answered by waiting for Retry-After (a few times, within
// the caller's deadline), and IBM's answers mapped to the operator's errors:
// 401 is AuthenticationFailed and 403 PermissionDenied, both
// ProviderConfigErrors (never a deletion), 404 a KeyNotFoundError,
// and everything that says "this instance cannot answer now" (network errors,
// timeouts, 5xx, throttling that outlasted the retries) an
// IbmUnavailableError, which is what moves reads to a secondary instance.
//
// Why fetch and not ibm-cloud-sdk-core: the provider needs a handful of JSON
// calls and one form POST. ibm-cloud-sdk-core 5.9.1 brings axios and 62 other
// packages (15 MB on disk); importing it took 250–640 ms and 35 MiB of RSS
// (7 MiB of heap) on this machine (node 24, measured 2026-12-05), which every
// operator that connects one IBM store would pay. Its authenticators retry
// and refresh on their own clocks, outside our request budget, deadlines and
// abort signals. IBM's Secrets Manager SDK on npm (@ibm-cloud/secrets-manager
// 0.1.1) is the retired v1 API. Node's fetch does everything needed here.
import { abortError } from '../../api/abort.js';
import { boundedText } from '../../api/errors.js';
import { Reasons } from '../../api/types.js';
import { KeyNotFoundError, ProviderConfigError, ProviderError } from '../provider.js';

/** Attempts of one request while IBM answers 429 (or 502/503/504). */
export const MAX_ATTEMPTS = 3;
/** The longest Retry-After we wait inside one call; longer ones are left to the controller's back-off. */
export const MAX_RETRY_AFTER_MS = 10_000;

/**
 * 401: the IAM token was not accepted. The client drops it and tries once more
 * with a fresh one, so this reaches the controller only when a freshly
 * exchanged token is refused too (AuthenticationFailed).
 */
export class IbmUnauthorizedError extends ProviderConfigError {
  constructor(message: string) {
    super(message, { reason: Reasons.AuthenticationFailed });
    this.name = 'IbmUnauthorizedError';
  }
}

/** The instance (or IAM) cannot answer now: network, timeout, 5xx, throttling. Reads may move to a secondary. */
export class IbmUnavailableError extends ProviderError {
  constructor(message: string, retryAfterMs?: number, cause?: unknown) {
    super(message, { ...(retryAfterMs !== undefined ? { retryAfterMs } : {}), ...(cause ? { cause } : {}) });
    this.name = 'IbmUnavailableError';
  }
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** JSON body (an object) or a form (URLSearchParams). */
  body?: unknown;
  /** How messages name the call: `GET secret "…"`. Never a value. */
  what: string;
  /** The key for KeyNotFoundError on 404. */
  key?: string;
  signal?: AbortSignal | undefined;
  /** One attempt's deadline. */
  timeoutMs: number;
  /** Called before every attempt (the request budget). */
  beforeAttempt?: () => Promise<void>;
  /** Waits (injectable for tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface HttpAnswer {
  status: number;
  body: unknown;
}

/** One request; returns the parsed JSON of a 2xx answer, throws the mapped error otherwise. */
export async function ibmRequest(req: HttpRequest): Promise<HttpAnswer> {
  const sleep = req.sleep ?? abortableSleep;
  for (let attempt = 1; ; attempt++) {
    if (req.signal?.aborted) throw abortError(req.signal, req.what);
    await req.beforeAttempt?.();
    const answer = await once(req);
    if (answer.status >= 200 && answer.status < 300) return answer;
    const retryAfterMs = retryAfter(answer.headers, attempt);
    const retriable = answer.status === 429 || answer.status === 502 || answer.status === 503 || answer.status === 504;
    if (retriable && attempt < MAX_ATTEMPTS && retryAfterMs <= MAX_RETRY_AFTER_MS) {
      await sleep(retryAfterMs, req.signal).catch(() => {
        throw abortError(req.signal as AbortSignal, req.what);
      });
      continue;
    }
    throw mapStatus(req, answer.status, answer.body, retriable ? retryAfterMs : undefined);
  }
}

async function once(req: HttpRequest): Promise<HttpAnswer & { headers: Headers }> {
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  let body: string | undefined;
  if (req.body instanceof URLSearchParams) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = req.body.toString();
  } else if (req.body !== undefined) {
    // A caller may name a JSON media type of its own (PATCH …/metadata takes application/merge-patch+json).
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(req.body);
  }
  try {
    const res = await fetch(req.url, { method: req.method, headers, ...(body !== undefined ? { body } : {}), signal });
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: res.status, body: parsed, headers: res.headers };
  } catch (err) {
    if (req.signal?.aborted) throw abortError(req.signal, req.what);
    const why = timeout.aborted ? `no answer within ${req.timeoutMs} ms` : networkReason(err);
    throw new IbmUnavailableError(`${req.what}: ${why}`, undefined, err);
  }
}

/** IBM's error body says what went wrong in `errors[0].message` (Secrets Manager) or `errorMessage` (IAM). */
export function ibmErrorText(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const b = body as { errors?: { code?: unknown; message?: unknown }[]; errorCode?: unknown; errorMessage?: unknown };
  const first = Array.isArray(b.errors) ? b.errors[0] : undefined;
  const code = first?.code ?? b.errorCode;
  const message = first?.message ?? b.errorMessage;
  const parts = [typeof code === 'string' ? code : '', typeof message === 'string' ? message : ''].filter(Boolean);
  return boundedText(parts.join(': '), 200);
}

export function mapStatus(
  req: Pick<HttpRequest, 'what' | 'key'>,
  status: number,
  body: unknown,
  retryAfterMs?: number,
): Error {
  const detail = ibmErrorText(body);
  const message = `${req.what}: HTTP ${status}${detail ? ` (${detail})` : ''}`;
  // Reasons of their own (AuthenticationFailed, PermissionDenied as Vault's 403): a ManagedSecret says which it is.
  if (status === 401) return new IbmUnauthorizedError(message);
  // A missing access policy: the client itself is fine, rebuilding it would only drop its token.
  if (status === 403)
    return new ProviderConfigError(message, { reason: Reasons.PermissionDenied, clientUnusable: false });
  if (status === 404 && req.key !== undefined) return new KeyNotFoundError(message, req.key);
  if (status === 429 || status >= 500) return new IbmUnavailableError(message, retryAfterMs);
  return new ProviderError(message);
}

/** Retry-After in seconds (or an HTTP date); without one, 0.5 s doubling per attempt. */
export function retryAfter(headers: Headers, attempt: number): number {
  const value = headers.get('retry-after');
  if (value !== null) {
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
    const at = Date.parse(value);
    if (Number.isFinite(at)) return Math.max(0, at - Date.now());
  }
  return 500 * 2 ** (attempt - 1);
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  if (cause && typeof cause.code === 'string') return `unreachable (${cause.code})`;
  return 'unreachable';
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Error('aborted'));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
