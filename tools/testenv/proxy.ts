// Proxies that put network faults between a client and a real API server, for
// the fault-tolerance tests: a TCP proxy that can swallow connections (a
// half-open link: accepted, then silence both ways) and forward again, and an
// HTTP proxy that terminates TLS so it can count requests and answer some of
// them itself (a 429 with Retry-After, a hanging answer). Both count what they
// see, so tests can bound the requests a client makes during a fault.
import { KubeConfig } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { TestCluster } from './cluster.js';

/** `forward`: connections reach the upstream. `blackhole`: accepted, then nothing is ever delivered. */
export type TcpProxyMode = 'forward' | 'blackhole';

interface Link {
  client: Socket;
  upstream?: Socket;
}

/** A TCP proxy on 127.0.0.1 (TLS passes through untouched) whose links can be made to go silent. */
export class TcpFaultProxy {
  /** When each connection was accepted (ms since the epoch). */
  readonly accepted: number[] = [];
  private mode: TcpProxyMode = 'forward';
  private readonly links = new Set<Link>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly upstream: { host: string; port: number },
  ) {}

  static async start(upstream: { host: string; port: number }): Promise<TcpFaultProxy> {
    const server = createTcpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new TcpFaultProxy(server, (server.address() as AddressInfo).port, upstream);
    server.on('connection', (socket: Socket) => proxy.accept(socket));
    return proxy;
  }

  /** A proxy in front of a test cluster's API server. */
  static inFrontOf(cluster: TestCluster): Promise<TcpFaultProxy> {
    const url = new URL(cluster.server);
    return TcpFaultProxy.start({ host: url.hostname, port: Number(url.port) });
  }

  /** The cluster's admin kubeconfig, pointed at this proxy (the serving certificate is valid for 127.0.0.1). */
  kubeConfig(cluster: TestCluster): KubeConfig {
    return redirect(cluster.kubeConfig(), `https://127.0.0.1:${this.port}`);
  }

  /** Connections accepted since `since` (ms since the epoch). */
  connectionsSince(since: number): number {
    return this.accepted.filter((t) => t >= since).length;
  }

  /**
   * `blackhole` also silences the links open now, both ways, without closing
   * them: what a client sees when a network path dies. `forward` lets new
   * connections through; silenced links stay silent until their client closes them.
   */
  setMode(mode: TcpProxyMode): void {
    this.mode = mode;
    if (mode === 'blackhole') for (const link of this.links) silence(link);
  }

  private accept(client: Socket): void {
    this.accepted.push(Date.now());
    const link: Link = { client };
    this.links.add(link);
    client.on('error', () => undefined);
    client.on('close', () => {
      link.upstream?.destroy();
      this.links.delete(link);
    });
    if (this.mode === 'blackhole') {
      silence(link);
      return;
    }
    const upstream = connect(this.upstream.port, this.upstream.host);
    link.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async stop(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Nothing more crosses the link either way; bytes are read and dropped so no side blocks on a full buffer. */
function silence(link: Link): void {
  link.client.unpipe();
  link.upstream?.unpipe();
  link.client.removeAllListeners('data');
  link.client.on('data', () => undefined);
  link.upstream?.on('data', () => undefined);
  link.client.resume();
  link.upstream?.resume();
}

/** The client config of `kc` with its current cluster's server replaced. */
function redirect(kc: KubeConfig, server: string): KubeConfig {
  const current = kc.getCurrentCluster();
  if (!current) throw new Error('the kubeconfig has no current cluster');
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.name === current.name ? { ...c, server } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return out;
}

/** One request the HTTP proxy saw. */
export interface ProxiedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** Answered by the proxy (an injected fault), not by the upstream. */
  injected: boolean;
}

/** The proxy's own answer to a request: a status (with headers and body), or `hang` (never answer). */
export type Injected = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/**
 * An HTTPS proxy in front of a test cluster: it terminates TLS with the
 * cluster's serving certificate (clients keep trusting the cluster CA) and
 * forwards every request as the cluster admin, streaming watches through.
 * `inject` decides, request by request, whether the proxy answers instead.
 * `inFrontOfUrl` makes a plain HTTP one in front of any HTTP endpoint (moto).
 */
export class HttpFaultProxy {
  readonly requests: ProxiedRequest[] = [];
  /** Returns the proxy's own answer for a request, or undefined to forward it. */
  inject: ((req: ProxiedRequest) => Injected | undefined) | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: HttpServer,
    readonly port: number,
    private readonly upstream: URL,
    /** Client TLS towards an HTTPS upstream; undefined for a plain HTTP one. */
    private readonly tls: { ca: string; cert: Buffer | string; key: Buffer | string } | undefined,
  ) {
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async inFrontOf(cluster: TestCluster): Promise<HttpFaultProxy> {
    const pki = join(cluster.dir, 'pki');
    const admin = cluster.kubeConfig().getCurrentUser();
    if (!admin?.certData || !admin.keyData) throw new Error('the cluster kubeconfig has no admin client certificate');
    const tls = {
      ca: cluster.caPem,
      cert: Buffer.from(admin.certData, 'base64'),
      key: Buffer.from(admin.keyData, 'base64'),
    };
    const server = createHttpsServer({
      cert: readFileSync(join(pki, 'apiserver.crt')),
      key: readFileSync(join(pki, 'apiserver.key')),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new HttpFaultProxy(server, (server.address() as AddressInfo).port, new URL(cluster.server), tls);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.handle(req, res));
    return proxy;
  }

  /** A plain HTTP proxy on 127.0.0.1 in front of an HTTP endpoint (say, moto's). */
  static async inFrontOfUrl(upstream: string): Promise<HttpFaultProxy> {
    const url = new URL(upstream);
    if (url.protocol !== 'http:') throw new Error(`inFrontOfUrl takes an http: URL, got ${upstream}`);
    const server = createHttpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new HttpFaultProxy(server, (server.address() as AddressInfo).port, url, undefined);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.handle(req, res));
    return proxy;
  }

  /** This proxy's address, as `http://127.0.0.1:PORT` (plain) or `https://…` (in front of a cluster). */
  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** The cluster's admin kubeconfig, pointed at this proxy. */
  kubeConfig(cluster: TestCluster): KubeConfig {
    return redirect(cluster.kubeConfig(), `https://127.0.0.1:${this.port}`);
  }

  /** The requests seen so far that match. */
  seen(match: (r: ProxiedRequest) => boolean = () => true): ProxiedRequest[] {
    return this.requests.filter(match);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://proxy');
    const seen: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      at: Date.now(),
      injected: false,
    };
    this.requests.push(seen);
    const answer = this.inject?.(seen);
    if (answer !== undefined) {
      seen.injected = true;
      req.resume();
      if (answer === 'hang') return;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '');
      return;
    }
    const headers = { ...req.headers };
    const target = new URL(req.url ?? '/', this.upstream);
    const onAnswer = (up: IncomingMessage) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      res.flushHeaders();
      up.pipe(res);
    };
    let upstream: ClientRequest;
    if (this.tls) {
      // To the cluster: as the admin (the client's own credentials stay with the proxy).
      delete headers.host;
      delete headers.authorization;
      upstream = httpsRequest(
        target,
        { method: req.method, headers, ca: this.tls.ca, cert: this.tls.cert, key: this.tls.key },
        onAnswer,
      );
    } else {
      // Plain HTTP: everything passes as sent (AWS signatures cover the Host header, which names the proxy).
      upstream = httpRequest(target, { method: req.method, headers }, onAnswer);
    }
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A Status answer as the API server writes it, for `inject`. */
export function statusAnswer(code: number, reason: string, headers: Record<string, string> = {}): Injected {
  return {
    status: code,
    headers,
    body: JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message: reason, code }),
  };
}

/**
 * An AWS JSON-protocol error answer (Secrets Manager, KMS, SSM), for `inject`:
 * the SDK reads the code from `x-amzn-errortype` and the body's `__type`.
 */
export function awsErrorAnswer(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): Injected {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': code, ...headers },
    body: JSON.stringify({ __type: code, message }),
  };
}
