// The operator's one way to the Kubernetes API: a small JSON client with the
// fault tolerance every caller needs, so none of them has to add it. Every
// request has a deadline (connect, then the whole exchange; a watch has a
// connect and header deadline, then an idle watchdog), takes the caller's
// AbortSignal (which also ends its wait for the rate budget), and is retried
// with capped, jittered back-off that honours Retry-After when repeating it is
// safe. Errors carry the one error model's classification (src/api/errors.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import { Agent, request, type RequestOptions } from 'node:https';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { DeadlineError, NotLeaderError, SecretsyncError, type Retry } from '../api/errors.js';
import { deadline as combine } from '../api/abort.js';
import type { KubeAuth } from './config.js';
import { parseWatchEvent, WatchLineDecoder } from './watch-decoder.js';
import { ListPageDecoder, type DecodedList } from './list-decoder.js';

/** A Kubernetes object as the API server sends it: plain JSON, no model classes in between. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    creationTimestamp?: string;
    deletionTimestamp?: string;
    managedFields?: unknown;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeList<T> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** Condition reasons of the errors this client raises (see src/api/errors.ts). */
export const KubeErrorReasons = {
  /** A read (GET) the API server refused or failed. */
  ReadFailed: 'ReadFailed',
  /** A write the API server refused or failed. */
  WriteFailed: 'WriteFailed',
  /** No answer at all: refused, reset or broken connections. */
  Unreachable: 'KubeApiUnreachable',
} as const;

const isRead = (method: string): boolean => method === 'GET' || method === 'HEAD';

/**
 * Statuses where only a change by a person helps (a bad request, missing
 * permission or object). The rest are transient: 401 (a rotated token is
 * re-read), 409 (re-read and try again), 410 (re-list), 429 and 5xx.
 */
const TERMINAL_STATUSES = new Set([400, 403, 404, 405, 406, 413, 415, 422]);

/** An error answer from the API server, with its HTTP status and the Status reason it gave. */
export class KubeApiError extends SecretsyncError {
  /** The Kubernetes Status reason (`NotFound`, `AlreadyExists`, `TooManyRequests`, ...); `reason` is the condition reason. */
  readonly statusReason: string;

  constructor(
    readonly status: number,
    statusReason: string,
    message: string,
    options: { method?: string; retryAfterMs?: number } = {},
  ) {
    const retry: Retry = TERMINAL_STATUSES.has(status) ? 'terminal' : 'transient';
    const reason =
      options.method === undefined || !isRead(options.method)
        ? KubeErrorReasons.WriteFailed
        : KubeErrorReasons.ReadFailed;
    super(reason, retry, message, { retryAfterMs: options.retryAfterMs });
    this.name = 'KubeApiError';
    this.statusReason = statusReason;
  }
}

/** Network error codes after which trying again can help. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

/** No HTTP answer: the connection was refused, reset or broke, or TLS failed. */
export class KubeTransportError extends SecretsyncError {
  /** The system error code (`ECONNREFUSED`, `ECONNRESET`, ...), if there was one. */
  readonly code: string | undefined;
  /** Whether the request may have reached the server (false: it certainly did not). */
  readonly sent: boolean;

  constructor(method: string, path: string, cause: unknown, sent: boolean) {
    const code = (cause as { code?: unknown } | null)?.code;
    const text = cause instanceof Error ? cause.message : String(cause);
    const known = typeof code === 'string' ? code : undefined;
    // A certificate the client does not trust stays untrusted: only a person can fix that.
    const retry: Retry = known === undefined || TRANSIENT_NETWORK_CODES.has(known) ? 'transient' : 'terminal';
    super(KubeErrorReasons.Unreachable, retry, `${method} ${path}: ${text}`, { cause });
    this.name = 'KubeTransportError';
    this.code = known;
    this.sent = sent;
  }
}

/** A connection (TCP and TLS) was not up within the connect timeout; the request was never sent. */
export class ConnectDeadlineError extends DeadlineError {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectDeadlineError';
  }
}

/** A watch stream brought nothing (no event, no bookmark) within the idle timeout: it is restarted. */
export class WatchIdleError extends DeadlineError {
  constructor(message: string) {
    super(message);
    this.name = 'WatchIdleError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.status === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof KubeApiError && err.status === 409 && err.statusReason === 'AlreadyExists';

export interface RequestOpts {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /**
   * `body` already serialised (JSON.stringify of it, as UTF-8), when the caller
   * made it in a CPU turn of its own: a 1 MiB Secret takes milliseconds to
   * serialise, and twenty of them written together blocked the event loop.
   * `body` is still given: it says whether a retry is safe.
   */
  encodedBody?: Buffer;
  /**
   * The caller does not read the answer: a 2xx body is drained unread and the
   * request resolves to undefined. The answer to a Secret write is the whole
   * Secret again (up to 1 MiB to decode and parse for nothing).
   */
  discardBody?: boolean;
  contentType?: string;
  /** Aborts the request, its retries and its wait for the rate budget. */
  signal?: AbortSignal;
  /**
   * Repeating the request after a failure that leaves unknown whether the
   * server acted (a reset, a timeout, a 503/504) does no harm. Reads always
   * are; writes are when they say so themselves: a PUT with a resourceVersion
   * precondition, a DELETE with preconditions, a server-side apply. Set it for
   * others that are (a merge patch of status); set false to never repeat.
   */
  idempotent?: boolean;
  /** The whole request's deadline (rate wait, attempts, back-off); default the client's `requestTimeoutMs`. */
  timeoutMs?: number;
  /**
   * A write also guarded by this fence (a shard's), besides the client's own:
   * by default the fence of the `withFence` scope the request is made in.
   */
  fence?: WriteFence;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 90_000;
export const DEFAULT_MAX_ATTEMPTS = 5;

export interface ClientOptions {
  /** Client-side request budget: sustained requests per second (0 = unlimited). */
  qps?: number;
  /** Requests allowed in a burst above `qps`. */
  burst?: number;
  /** Concurrent connections to the API server. */
  maxSockets?: number;
  /** User-Agent header, so API server audit logs and metrics name us. */
  userAgent?: string;
  /** Guards every request that may write (any method but GET): see `WriteFence`. */
  fence?: WriteFence;
  /** Deadline of a whole non-watch request, retries included (default 30 s); of a watch's response headers. */
  requestTimeoutMs?: number;
  /** Deadline of each connection (TCP and TLS handshake; default 5 s). */
  connectTimeoutMs?: number;
  /** A watch that brings nothing (no event, no bookmark) for this long is ended with WatchIdleError (default 90 s). */
  watchIdleTimeoutMs?: number;
  /** Attempts of one request, the first included (default 5). */
  maxAttempts?: number;
  /** First back-off between attempts (default 250 ms); doubled each time, with jitter. */
  retryBaseDelayMs?: number;
  /** Longest back-off between attempts when the server did not say (default 8 s). */
  retryMaxDelayMs?: number;
}

/**
 * What a leader elector gives the clients that write: `assertHeld` throws
 * (NotLeaderError) once this replica may no longer write, and `signal` aborts
 * the writes in flight at that moment.
 */
export interface WriteFence {
  assertHeld(): void;
  readonly signal: AbortSignal;
}

/** Why a signal aborted, as something to throw. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Waits `ms`, or rejects with the signal's reason once it aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A promise that also rejects once `signal` aborts (for work that takes no signal of its own). */
function raceSignal<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** A token bucket: `take` waits for a token (until its signal aborts), `tryTake` answers at once. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
  /** Waits for a token; rejects with the signal's reason (say, the request's DeadlineError) once it aborts. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await abortableSleep(Math.ceil(((1 - this.tokens) / this.rate) * 1000), signal);
    }
  }
}

/**
 * How long the server asked us to wait: `Retry-After` in seconds or as an
 * HTTP date; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date starts with the day's name; Date.parse would take '-1' for a year.
  const at = /^[A-Za-z]/.test(text) ? Date.parse(text) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(3))}s`;

/** The error for an answer with an error status: the Status object's reason and message, never any other body. */
function apiError(
  method: string,
  path: string,
  status: number,
  text: string,
  headers: IncomingHttpHeaders,
): KubeApiError {
  let reason = 'Unknown';
  let message = `${method} ${path}: HTTP ${status}`;
  let retryAfterMs = parseRetryAfter(headers['retry-after']);
  try {
    const parsed = JSON.parse(text) as {
      kind?: string;
      reason?: string;
      message?: string;
      details?: { retryAfterSeconds?: number };
    };
    if (parsed.kind === 'Status') {
      reason = parsed.reason ?? reason;
      if (parsed.message) message = `${method} ${path}: ${parsed.message}`;
      const fromStatus = parsed.details?.retryAfterSeconds;
      if (retryAfterMs === undefined && typeof fromStatus === 'number' && fromStatus >= 0)
        retryAfterMs = fromStatus * 1000;
    }
  } catch {
    // not a Status object
  }
  return new KubeApiError(status, reason, message, { method, retryAfterMs });
}

/** Writes that say by themselves that repeating them is harmless. */
function impliedIdempotent(method: string, opts: RequestOpts): boolean {
  const body = opts.body as
    | { metadata?: { resourceVersion?: unknown }; preconditions?: { uid?: unknown; resourceVersion?: unknown } }
    | undefined;
  if (method === 'PUT')
    return typeof body?.metadata?.resourceVersion === 'string' && body.metadata.resourceVersion !== '';
  if (method === 'DELETE')
    return body?.preconditions?.uid !== undefined || body?.preconditions?.resourceVersion !== undefined;
  if (method === 'PATCH') return opts.contentType === 'application/apply-patch+yaml';
  return false;
}

/** What one attempt saw of its connection, for the retry decision. */
interface AttemptState {
  /** The connection was up (the request may have reached the server). */
  connected: boolean;
}

/**
 * A small JSON client for the Kubernetes API, authenticated through a
 * `KubeAuth` (src/kube/config.ts, or client-node's KubeConfig). Requests share
 * keep-alive connections.
 */
export class KubeClient {
  private authCache: { options: RequestOptions; at: number } | undefined;
  private readonly agent: Agent | HttpAgent;
  /** Watches hold their connection for minutes: on their own agent, they never take the requests' sockets. */
  private readonly watchAgent: Agent | HttpAgent;
  private readonly bucket: TokenBucket | undefined;
  readonly server: URL;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly watchIdleTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryBaseDelayMs: number;
  private readonly retryMaxDelayMs: number;
  /** The shard fence of the sync a request is made for (see `withFence`). */
  private readonly fenceScope = new AsyncLocalStorage<WriteFence>();

  constructor(
    private readonly kc: KubeAuth,
    private readonly options: ClientOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 32 };
    const watchAgentOptions = { keepAlive: true };
    const tls = this.server.protocol === 'https:';
    this.agent = tls ? new Agent(agentOptions) : new HttpAgent(agentOptions);
    this.watchAgent = tls ? new Agent(watchAgentOptions) : new HttpAgent(watchAgentOptions);
    this.bucket =
      options.qps && options.qps > 0 ? new TokenBucket(options.qps, options.burst ?? options.qps * 2) : undefined;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.watchIdleTimeoutMs = options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 250;
    this.retryMaxDelayMs = options.retryMaxDelayMs ?? 8_000;
  }

  /** Auth settings are refreshed every minute: projected ServiceAccount tokens rotate on disk. */
  private async auth(): Promise<RequestOptions> {
    if (this.authCache && Date.now() - this.authCache.at < 60_000) return this.authCache.options;
    const options: RequestOptions = {};
    await this.kc.applyToHTTPSOptions(options);
    this.authCache = { options, at: Date.now() };
    return options;
  }

  private url(path: string, query?: RequestOpts['query']): URL {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /**
   * Sends one attempt and resolves with the response once its headers are in.
   * The connection must be up (TCP and TLS) within the connect timeout; the
   * caller's signal bounds the rest.
   */
  private async send(
    method: string,
    path: string,
    url: URL,
    body: Buffer | undefined,
    contentType: string | undefined,
    signal: AbortSignal,
    state: AttemptState,
    agent: Agent | HttpAgent = this.agent,
    beforeWrite?: () => void,
  ): Promise<IncomingMessage> {
    // The auth source may run a plugin or read a file: it must not outlive the request.
    const auth = await raceSignal(this.auth(), signal);
    const headers: Record<string, string | number> = {
      ...(auth.headers as Record<string, string> | undefined),
      accept: 'application/json',
      'user-agent': this.options.userAgent ?? 'secretsync',
    };
    if (body) {
      headers['content-type'] = contentType ?? 'application/json';
      headers['content-length'] = body.length;
    }
    const tls = url.protocol === 'https:';
    const send = tls ? request : httpRequest;
    return new Promise((resolve, reject) => {
      let connectTimer: NodeJS.Timeout | undefined;
      const connected = () => {
        clearTimeout(connectTimer);
        state.connected = true;
      };
      const req = send(
        url,
        {
          method,
          agent,
          headers,
          ca: auth.ca,
          cert: auth.cert,
          key: auth.key,
          servername: auth.servername,
          rejectUnauthorized: auth.rejectUnauthorized,
          signal,
        },
        (res) => {
          clearTimeout(connectTimer);
          resolve(res);
        },
      );
      // The request goes out only once its connection is up, and `beforeWrite` (a fenced write's lease
      // check) runs right before: between the caller's check and the bytes leaving there may be a
      // connect and a TLS handshake, and a process stopped (SIGSTOP, a frozen VM) in that gap would
      // otherwise send its write after resuming, when another replica may lead.
      const write = () => {
        try {
          beforeWrite?.();
        } catch (err) {
          req.destroy(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        req.end(body);
      };
      req.once('socket', (socket: Socket) => {
        // A kept-alive connection is up already; a new one must be within the connect timeout.
        if (!socket.connecting) {
          connected();
          write();
          return;
        }
        connectTimer = setTimeout(
          () =>
            req.destroy(
              new ConnectDeadlineError(
                `${method} ${path}: no connection to ${this.server.host} within ${seconds(this.connectTimeoutMs)}`,
              ),
            ),
          this.connectTimeoutMs,
        );
        socket.once(tls ? 'secureConnect' : 'connect', () => {
          connected();
          write();
        });
      });
      req.on('error', (err) => {
        clearTimeout(connectTimer);
        reject(err);
      });
    });
  }

  /** The error a failed attempt stands for: the abort's reason, ours, or the transport failure. */
  private failure(err: unknown, method: string, path: string, signal: AbortSignal, state: AttemptState): unknown {
    if (signal.aborted) {
      const reason = abortReason(signal);
      if (reason instanceof SecretsyncError) return reason;
      // A caller's AbortSignal.timeout() is a deadline too: say which request it ended.
      if (reason instanceof Error && reason.name === 'TimeoutError')
        return new DeadlineError(`${method} ${path}: the caller's deadline passed`, { cause: reason });
      return reason;
    }
    if (err instanceof SecretsyncError) return err;
    return new KubeTransportError(method, path, err, state.connected);
  }

  /**
   * How long to wait before the next attempt, or undefined to give up: 429
   * (the server refused before acting) for every request; 502/503/504 and
   * broken connections only when repeating is safe or the request never left.
   */
  private nextDelay(err: unknown, attempt: number, repeatable: boolean, remainingMs: number): number | undefined {
    if (attempt >= this.maxAttempts) return undefined;
    let retry = false;
    let retryAfterMs: number | undefined;
    if (err instanceof KubeApiError) {
      retry = err.status === 429 || (repeatable && (err.status === 502 || err.status === 503 || err.status === 504));
      retryAfterMs = err.retryAfterMs;
    } else if (err instanceof ConnectDeadlineError) {
      retry = true;
    } else if (err instanceof KubeTransportError) {
      retry = err.transient && (repeatable || !err.sent);
    }
    if (!retry) return undefined;
    const backoff = Math.min(this.retryMaxDelayMs, this.retryBaseDelayMs * 2 ** (attempt - 1));
    const delay =
      retryAfterMs !== undefined
        ? // Not before the server said; a little later, so that throttled clients do not come back in step.
          retryAfterMs + Math.random() * Math.min(1_000, retryAfterMs * 0.1 + 50)
        : backoff * (0.5 + Math.random() / 2);
    return delay < remainingMs ? delay : undefined;
  }

  /**
   * One request, retried where safe; resolves to what `read` makes of the body
   * of a 2xx answer (its text by default), throws the classified error. A body
   * cut off while `read` consumes it fails the attempt like a broken connection.
   */
  private async exchange<R = string>(
    method: string,
    path: string,
    opts: RequestOpts,
    read: (res: IncomingMessage) => Promise<R> = readText as (res: IncomingMessage) => Promise<R>,
  ): Promise<R> {
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    const started = Date.now();
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new DeadlineError(`${method} ${path}: no answer within ${seconds(timeoutMs)}`)),
      timeoutMs,
    );
    const fence = isRead(method) ? undefined : this.fenceOf(opts);
    // Not AbortSignal.any: on Node 20 the fence's long-lived signal would keep every combination (see api/abort.ts).
    const combined = combine(undefined, deadline.signal, opts.signal, ...(fence?.signals ?? []));
    const signal = combined.signal;
    const repeatable = isRead(method) || (opts.idempotent ?? impliedIdempotent(method, opts));
    const url = this.url(path, opts.query);
    const body = opts.encodedBody ?? (opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body)));
    try {
      for (let attempt = 1; ; attempt++) {
        const state: AttemptState = { connected: false };
        try {
          // Not leading: do not wait for the budget. Leading is checked again by `send`, right before
          // the bytes leave (after the budget wait, the auth refresh and the connect).
          fence?.assertHeld();
          if (this.bucket) await this.bucket.take(signal);
          const res = await this.send(
            method,
            path,
            url,
            body,
            opts.contentType,
            signal,
            state,
            this.agent,
            fence ? () => fence.assertHeld() : undefined,
          );
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return await read(res);
          throw apiError(method, path, status, await readText(res), res.headers);
        } catch (err) {
          const failure = this.failure(err, method, path, signal, state);
          if (state.connected && failure instanceof DeadlineError) this.dropIdleConnections();
          if (fence && signal.aborted && !(failure instanceof SecretsyncError)) {
            const fenced = fence.signals.find((s) => s.aborted);
            if (fenced) throw fenced.reason instanceof SecretsyncError ? fenced.reason : new NotLeaderError();
          }
          const delay = this.nextDelay(failure, attempt, repeatable, timeoutMs - (Date.now() - started));
          if (delay === undefined) throw failure;
          try {
            await abortableSleep(delay, signal);
          } catch {
            throw this.failure(failure, method, path, signal, state);
          }
        }
      }
    } finally {
      clearTimeout(timer);
      combined.dispose();
    }
  }

  /**
   * The fences a write passes: the client's (the leader's) and the request's
   * or its scope's (a shard's). Undefined when there is none.
   */
  private fenceOf(opts: RequestOpts): { assertHeld(): void; signals: AbortSignal[] } | undefined {
    const fences = [this.options.fence, opts.fence ?? this.fenceScope.getStore()].filter(
      (f): f is WriteFence => f !== undefined,
    );
    if (fences.length === 0) return undefined;
    return {
      assertHeld: () => {
        for (const f of fences) f.assertHeld();
      },
      signals: fences.map((f) => f.signal),
    };
  }

  /**
   * Runs `work` with every write it makes through this client, however deep
   * (a Secret write, a status patch, an Event, a rollout restart), guarded by
   * `fence` as well: one client for all shards, each sync in its shard's scope.
   */
  withFence<T>(fence: WriteFence | undefined, work: () => Promise<T>): Promise<T> {
    return fence ? this.fenceScope.run(fence, work) : work();
  }

  /** One request; resolves to the parsed JSON body, throws KubeApiError on an error status. */
  async request<T>(method: string, path: string, opts: RequestOpts = {}): Promise<T> {
    if (opts.discardBody) return (await this.exchange(method, path, opts, drain)) as T;
    const text = await this.exchange(method, path, opts);
    if (text.length === 0) return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      // V8's message quotes the text, and the text may be a Secret.
      throw new KubeTransportError(method, path, new Error('the answer is not valid JSON'), true);
    }
  }

  get<T>(path: string, query?: RequestOpts['query'], opts: Pick<RequestOpts, 'signal' | 'timeoutMs'> = {}): Promise<T> {
    return this.request<T>('GET', path, { ...opts, query });
  }

  /**
   * Lists every page of a collection; each page has its own deadline
   * (`timeoutMs`). `map` turns each item into what the caller keeps as its
   * page arrives, so the raw pages are garbage before the next one is read
   * (objects a namespace writes may be a MiB each); `pageSize` items a page.
   */
  async list<T, R = T>(
    path: string,
    query: RequestOpts['query'] = {},
    opts: Pick<RequestOpts, 'signal' | 'timeoutMs'> & { pageSize?: number; map?: (item: T) => R } = {},
  ): Promise<KubeList<R>> {
    const { pageSize = 500, map, ...requestOpts } = opts;
    const items: R[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    const mapItem = map ?? ((item: T) => item as unknown as R);
    do {
      // Each item is parsed and mapped as its bytes arrive (see list-decoder.ts); an attempt that fails starts over.
      const page = await this.exchange(
        'GET',
        path,
        { ...requestOpts, query: { ...query, limit: pageSize, continue: cont } },
        (res) => readList(res, mapItem),
      );
      for (const item of page.items) items.push(item);
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (cont);
    return { metadata: { resourceVersion }, items };
  }

  /**
   * Streams watch events until the server closes the stream or `signal`
   * aborts. Each line of the response is one `{type, object}` event. The
   * connection and the response headers have deadlines; after that, a stream
   * that brings nothing for `idleTimeoutMs` (bookmarks count) ends with
   * WatchIdleError: a half-open connection would otherwise stall for hours.
   */
  async watch(
    path: string,
    query: RequestOpts['query'],
    onEvent: (type: string, object: KubeObject) => void,
    signal: AbortSignal,
    opts: { idleTimeoutMs?: number } = {},
  ): Promise<void> {
    const idleTimeoutMs = opts.idleTimeoutMs ?? this.watchIdleTimeoutMs;
    const local = new AbortController();
    const combined = combine(undefined, signal, local.signal);
    const both = combined.signal;
    const url = this.url(path, { ...query, watch: true });
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () =>
          local.abort(
            new WatchIdleError(`watch ${path}: nothing (no event, no bookmark) within ${seconds(idleTimeoutMs)}`),
          ),
        idleTimeoutMs,
      );
    };
    const state: AttemptState = { connected: false };
    // The rate wait, the connection and the headers together are bounded like a request.
    const openTimer = setTimeout(
      () => local.abort(new DeadlineError(`watch ${path}: no response within ${seconds(this.requestTimeoutMs)}`)),
      this.requestTimeoutMs,
    );
    try {
      let res: IncomingMessage;
      try {
        if (this.bucket) await this.bucket.take(both);
        res = await this.send('GET', path, url, undefined, undefined, both, state, this.watchAgent);
        if ((res.statusCode ?? 0) >= 300) {
          const text = await readText(res);
          const err = apiError('GET', path, res.statusCode ?? 0, text, res.headers);
          throw new KubeApiError(err.status, err.statusReason, `watch ${path}: HTTP ${err.status}`, {
            method: 'GET',
            retryAfterMs: err.retryAfterMs,
          });
        }
      } finally {
        clearTimeout(openTimer);
      }
      armIdle();
      const decoder = new WatchLineDecoder();
      for await (const chunk of res) {
        for (const line of decoder.push(chunk as Buffer)) {
          armIdle();
          const event = parseWatchEvent<KubeObject>(line);
          onEvent(event.type, event.object);
        }
      }
      // A rest without its newline is a cut-off event: the next watch (from the last version seen) brings it again.
    } catch (err) {
      if (signal.aborted) return;
      throw this.failure(err, 'GET', path, both, state);
    } finally {
      clearTimeout(openTimer);
      clearTimeout(idleTimer);
      local.abort();
      combined.dispose();
    }
  }

  /**
   * Closes the kept-alive connections that sit idle in the pool. Called when a
   * request got no answer within its deadline on an open connection: the path
   * to the server is likely dead, and so are the connections that sat idle on
   * it, which nothing reports (a half-open connection does not fail by itself;
   * TCP keep-alive takes minutes, and a middlebox may answer it). Reused, each
   * would cost the next request its whole deadline; a fresh one costs a handshake.
   */
  private dropIdleConnections(): void {
    for (const sockets of Object.values(this.agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
  }

  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
  }
}

/** A response body as text, decoded once whole (a character cut between chunks stays whole). */
/** A list body, decoded item by item as it arrives. */
async function readList<T, R>(res: IncomingMessage, map: (item: T) => R): Promise<DecodedList<R>> {
  const decoder = new ListPageDecoder<T, R>(map);
  for await (const chunk of res) decoder.push(chunk as Buffer);
  return decoder.end();
}

/** Reads a body to its end without keeping it. */
async function drain(res: IncomingMessage): Promise<undefined> {
  // Iterated, not resume()d: a connection cut mid-body must fail the attempt like any read.
  for await (const _chunk of res) {
    // nothing kept
  }
  return undefined;
}

async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
