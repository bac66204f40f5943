import { Agent, request, type RequestOptions } from 'node:https';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { KubeAuth } from './config.js';

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

/** An error answer from the API server, with its HTTP status and Status reason. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.status === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof KubeApiError && err.status === 409 && err.reason === 'AlreadyExists';

export interface RequestOpts {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

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

/** A token bucket: `take` waits for a token, `tryTake` answers at once. */
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
  async take(): Promise<void> {
    for (;;) {
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / this.rate) * 1000)));
    }
  }
}

/**
 * A small JSON client for the Kubernetes API, authenticated through a
 * `KubeAuth` (src/kube/config.ts, or client-node's KubeConfig). Requests share
 * keep-alive connections.
 */
export class KubeClient {
  private authCache: { options: RequestOptions; at: number } | undefined;
  private readonly agent: Agent | HttpAgent;
  private readonly bucket: TokenBucket | undefined;
  readonly server: URL;

  constructor(
    private readonly kc: KubeAuth,
    private readonly options: ClientOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 32 };
    this.agent = this.server.protocol === 'https:' ? new Agent(agentOptions) : new HttpAgent(agentOptions);
    this.bucket =
      options.qps && options.qps > 0 ? new TokenBucket(options.qps, options.burst ?? options.qps * 2) : undefined;
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

  private async open(method: string, path: string, opts: RequestOpts): Promise<IncomingMessage> {
    const fence = method === 'GET' ? undefined : this.options.fence;
    fence?.assertHeld();
    if (this.bucket) await this.bucket.take();
    // Checked again: leadership may have ended while this write waited for the budget.
    fence?.assertHeld();
    const signal = fence ? (opts.signal ? AbortSignal.any([opts.signal, fence.signal]) : fence.signal) : opts.signal;
    const auth = await this.auth();
    const url = this.url(path, opts.query);
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string | number> = {
      ...(auth.headers as Record<string, string> | undefined),
      accept: 'application/json',
      'user-agent': this.options.userAgent ?? 'secretsync',
    };
    if (body) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = body.length;
    }
    const send = url.protocol === 'https:' ? request : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          agent: this.agent,
          headers,
          ca: auth.ca,
          cert: auth.cert,
          key: auth.key,
          rejectUnauthorized: auth.rejectUnauthorized,
          signal,
        },
        resolve,
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** One request; resolves to the parsed JSON body, throws KubeApiError on an error status. */
  async request<T>(method: string, path: string, opts: RequestOpts = {}): Promise<T> {
    const res = await this.open(method, path, opts);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return (text.length > 0 ? JSON.parse(text) : {}) as T;
    let reason = 'Unknown';
    let message = `${method} ${path}: HTTP ${status}`;
    try {
      const parsed = JSON.parse(text) as { reason?: string; message?: string };
      reason = parsed.reason ?? reason;
      if (parsed.message) message = `${method} ${path}: ${parsed.message}`;
    } catch {
      // not a Status object
    }
    throw new KubeApiError(status, reason, message);
  }

  get<T>(path: string, query?: RequestOpts['query']): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  /** Lists every page of a collection. */
  async list<T>(path: string, query: RequestOpts['query'] = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.get<KubeList<T>>(path, { ...query, limit: 500, continue: cont });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (cont);
    return { metadata: { resourceVersion }, items };
  }

  /**
   * Streams watch events until the server closes the stream or `signal` aborts.
   * Each line of the response is one `{type, object}` event.
   */
  async watch(
    path: string,
    query: RequestOpts['query'],
    onEvent: (type: string, object: KubeObject) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await this.open('GET', path, { query: { ...query, watch: true }, signal });
    if ((res.statusCode ?? 0) >= 300) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      let reason = 'Unknown';
      try {
        reason = (JSON.parse(Buffer.concat(chunks).toString()) as { reason?: string }).reason ?? reason;
      } catch {
        // not a Status object
      }
      throw new KubeApiError(res.statusCode ?? 0, reason, `watch ${path}: HTTP ${res.statusCode}`);
    }
    let buffered = '';
    try {
      for await (const chunk of res) {
        buffered += (chunk as Buffer).toString('utf8');
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line.trim().length === 0) continue;
          const event = JSON.parse(line) as { type: string; object: KubeObject };
          onEvent(event.type, event.object);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
