// KubeClient against scripted HTTP peers: deadlines, retries (which requests,
// how often, how long apart), Retry-After, error classification, the rate wait
// and the caller's signal, and UTF-8 that the network cuts apart.
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DeadlineError, NotLeaderError, NotShardOwnerError, SecretsyncError } from '../../../src/api/errors.js';
import {
  ConnectDeadlineError,
  KubeApiError,
  KubeClient,
  KubeTransportError,
  WatchIdleError,
  isAlreadyExists,
  isConflict,
  isNotFound,
  parseRetryAfter,
  type ClientOptions,
  type KubeObject,
} from '../../../src/kube/client.js';

interface Seen {
  method: string;
  path: string;
  at: number;
  /** The request body as received. */
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** An HTTP peer whose answers a test scripts; it records every request and when it came. */
class ScriptedServer {
  readonly seen: Seen[] = [];
  handler: Handler = (_req, res) => res.end('{}');
  port = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((req, res) => {
      const seen = {
        method: req.method ?? '',
        path: new URL(req.url ?? '/', 'http://x').pathname,
        at: Date.now(),
        body: '',
      };
      this.seen.push(seen);
      req.on('data', (chunk: Buffer) => (seen.body += chunk.toString('utf8')));
      req.on('end', () => this.handler(req, res, this.seen.length));
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  client(options: ClientOptions = {}): KubeClient {
    return new KubeClient(kubeConfigFor(`http://127.0.0.1:${this.port}`), options);
  }
}

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

const status = (res: ServerResponse, code: number, reason: string, headers: Record<string, string> = {}) => {
  res.writeHead(code, { 'content-type': 'application/json', ...headers });
  res.end(
    JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message: `said ${reason}`, code }),
  );
};

/** Settles `work`, or fails the test once `ms` passed: a hang must not look like a pass or a mocha timeout. */
async function settle<T>(work: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; elapsed: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    const value = await Promise.race([work, hung]);
    return { value, elapsed: Date.now() - started };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('still pending')) throw error;
    return { error, elapsed: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

const FAST_RETRIES: ClientOptions = { retryBaseDelayMs: 10, retryMaxDelayMs: 40 };

describe('KubeClient', () => {
  let server: ScriptedServer;
  let client: KubeClient | undefined;

  beforeEach(async () => {
    server = await new ScriptedServer().start();
  });

  afterEach(async () => {
    client?.close();
    client = undefined;
    await server.stop();
  });

  describe('deadlines', () => {
    it('ends a request the server never answers with a DeadlineError naming method and path', async () => {
      server.handler = () => undefined;
      client = server.client({ requestTimeoutMs: 300 });
      const { error, elapsed } = await settle(
        client.request('POST', '/api/v1/namespaces/a/secrets', { body: { data: { k: 'czNjcmV0' } } }),
        3_000,
      );
      expect(error).to.be.instanceOf(DeadlineError);
      expect((error as DeadlineError).message).to.equal('POST /api/v1/namespaces/a/secrets: no answer within 0.3s');
      expect((error as DeadlineError).retry).to.equal('transient');
      expect(elapsed).to.be.within(250, 1_500);
    });

    it('bounds the body as well as the headers', async () => {
      server.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"items":[');
      };
      client = server.client({ requestTimeoutMs: 300 });
      const { error } = await settle(client.get('/api/v1/secrets'), 3_000);
      expect(error).to.be.instanceOf(DeadlineError);
    });

    it('turns a caller AbortSignal.timeout into a DeadlineError, and passes a plain abort through', async () => {
      server.handler = () => undefined;
      client = server.client();
      const timedOut = await settle(client.get('/api/v1/x', undefined, { signal: AbortSignal.timeout(100) }), 3_000);
      expect(timedOut.error).to.be.instanceOf(DeadlineError);
      expect((timedOut.error as Error).message).to.equal("GET /api/v1/x: the caller's deadline passed");
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('shutting down')), 50);
      const aborted = await settle(client.get('/api/v1/x', undefined, { signal: controller.signal }), 3_000);
      expect((aborted.error as Error).message).to.equal('shutting down');
    });

    it('times out a connection whose TLS handshake never completes, and retries it: it was never sent', async () => {
      const { tcp, accepted } = await silentTcpServer();
      try {
        client = new KubeClient(kubeConfigFor(`https://127.0.0.1:${(tcp.address() as AddressInfo).port}`), {
          connectTimeoutMs: 150,
          requestTimeoutMs: 5_000,
          maxAttempts: 3,
          ...FAST_RETRIES,
        });
        // Even a create: a request that never left may be sent again.
        const { error, elapsed } = await settle(client.request('POST', '/api/v1/namespaces', { body: {} }), 5_000);
        expect(error).to.be.instanceOf(ConnectDeadlineError);
        expect((error as Error).message).to.match(
          /^POST \/api\/v1\/namespaces: no connection to 127\.0\.0\.1:\d+ within 0\.15s$/,
        );
        expect(accepted()).to.equal(3);
        expect(elapsed).to.be.within(400, 2_000);
      } finally {
        await closeTcp(tcp);
      }
    });
  });

  describe('retries', () => {
    it('retries a read on 503 and 504 with growing back-off, then succeeds', async () => {
      server.handler = (_req, res, n) =>
        n === 1 ? status(res, 503, 'ServiceUnavailable') : n === 2 ? status(res, 504, 'Timeout') : res.end('{"ok":1}');
      client = server.client({ retryBaseDelayMs: 100, retryMaxDelayMs: 1_000 });
      expect(await client.get('/api/v1/x')).to.deep.equal({ ok: 1 });
      expect(server.seen).to.have.length(3);
      const gaps = [1, 2].map((i) => (server.seen[i]?.at ?? 0) - (server.seen[i - 1]?.at ?? 0));
      // 100 ms then 200 ms, each with jitter down to half.
      expect(gaps[0]).to.be.within(45, 400);
      expect(gaps[1]).to.be.within(95, 600);
    });

    it('waits as long as Retry-After says (seconds) on a 429, then succeeds', async () => {
      server.handler = (_req, res, n) =>
        n === 1 ? status(res, 429, 'TooManyRequests', { 'retry-after': '1' }) : res.end('{}');
      client = server.client(FAST_RETRIES);
      await client.get('/api/v1/x');
      expect(server.seen).to.have.length(2);
      expect((server.seen[1]?.at ?? 0) - (server.seen[0]?.at ?? 0)).to.be.within(990, 1_600);
    });

    it('retries a create (POST) on 429, which the server refused before acting', async () => {
      server.handler = (_req, res, n) =>
        n === 1 ? status(res, 429, 'TooManyRequests', { 'retry-after': '0' }) : res.end('{"created":true}');
      client = server.client(FAST_RETRIES);
      expect(await client.request('POST', '/api/v1/namespaces/a/secrets', { body: {} })).to.deep.equal({
        created: true,
      });
      expect(server.seen.map((s) => s.method)).to.deep.equal(['POST', 'POST']);
    });

    it('does not repeat a create after a 503 or a reset connection: the server may have acted', async () => {
      server.handler = (_req, res) => status(res, 503, 'ServiceUnavailable');
      client = server.client(FAST_RETRIES);
      const unavailable = await settle(client.request('POST', '/api/v1/namespaces/a/secrets', { body: {} }), 3_000);
      expect(unavailable.error).to.be.instanceOf(KubeApiError);
      expect((unavailable.error as KubeApiError).status).to.equal(503);
      expect(server.seen).to.have.length(1);

      server.handler = (req) => req.socket.destroy();
      const reset = await settle(client.request('POST', '/api/v1/namespaces/a/secrets', { body: {} }), 3_000);
      expect(reset.error).to.be.instanceOf(KubeTransportError);
      expect((reset.error as KubeTransportError).code).to.equal('ECONNRESET');
      expect((reset.error as KubeTransportError).sent).to.equal(true);
      expect((reset.error as KubeTransportError).transient).to.equal(true);
      expect(server.seen).to.have.length(2);
    });

    it('repeats a read after a reset connection', async () => {
      server.handler = (req, res, n) => (n < 3 ? req.socket.destroy() : res.end('{"ok":1}'));
      client = server.client(FAST_RETRIES);
      expect(await client.get('/api/v1/x')).to.deep.equal({ ok: 1 });
      expect(server.seen).to.have.length(3);
    });

    it('repeats writes that say they are safe to repeat, and only those', async () => {
      server.handler = (_req, res) => status(res, 503, 'ServiceUnavailable');
      client = server.client({ ...FAST_RETRIES, maxAttempts: 3 });
      const attempts = async (method: string, opts: Parameters<KubeClient['request']>[2]) => {
        const before = server.seen.length;
        const { error } = await settle(client!.request(method, '/api/v1/namespaces/a/secrets/s', opts), 3_000);
        expect((error as KubeApiError).status).to.equal(503);
        return server.seen.length - before;
      };
      expect(await attempts('PUT', { body: { metadata: { name: 's', resourceVersion: '7' } } })).to.equal(3);
      expect(await attempts('PUT', { body: { metadata: { name: 's' } } })).to.equal(1);
      expect(await attempts('DELETE', { body: { preconditions: { uid: 'u-1' } } })).to.equal(3);
      expect(await attempts('DELETE', {})).to.equal(1);
      expect(await attempts('PATCH', { body: {}, contentType: 'application/apply-patch+yaml' })).to.equal(3);
      expect(await attempts('PATCH', { body: {}, contentType: 'application/merge-patch+json' })).to.equal(1);
      expect(
        await attempts('PATCH', { body: {}, contentType: 'application/merge-patch+json', idempotent: true }),
      ).to.equal(3);
      expect(
        await attempts('PUT', { body: { metadata: { name: 's', resourceVersion: '7' } }, idempotent: false }),
      ).to.equal(1);
    });

    it('gives up after the attempt limit, and keeps the classification', async () => {
      server.handler = (_req, res) => status(res, 503, 'ServiceUnavailable');
      client = server.client({ ...FAST_RETRIES, maxAttempts: 4 });
      const { error } = await settle(client.get('/api/v1/x'), 3_000);
      expect(server.seen).to.have.length(4);
      expect(error).to.be.instanceOf(KubeApiError).and.instanceOf(SecretsyncError);
      expect((error as KubeApiError).retry).to.equal('transient');
      expect((error as KubeApiError).reason).to.equal('ReadFailed');
    });

    it('gives up at once when Retry-After is beyond the deadline, and says when to come back', async () => {
      server.handler = (_req, res) => status(res, 429, 'TooManyRequests', { 'retry-after': '120' });
      client = server.client({ requestTimeoutMs: 10_000 });
      const { error, elapsed } = await settle(client.get('/api/v1/x'), 3_000);
      expect(elapsed).to.be.below(500);
      expect(server.seen).to.have.length(1);
      expect((error as KubeApiError).status).to.equal(429);
      expect((error as KubeApiError).retryAfterMs).to.equal(120_000);
    });

    it('keeps all attempts and waits within the request deadline', async () => {
      server.handler = (_req, res) => status(res, 503, 'ServiceUnavailable', { 'retry-after': '1' });
      client = server.client({ requestTimeoutMs: 1_500, maxAttempts: 10 });
      const { error, elapsed } = await settle(client.get('/api/v1/x'), 5_000);
      expect(server.seen).to.have.length(2);
      expect(elapsed).to.be.below(1_600);
      expect((error as KubeApiError).status).to.equal(503);
      expect((error as KubeApiError).retryAfterMs).to.equal(1_000);
    });
  });

  describe('bodies', () => {
    it('lists page by page, mapping each item; a body cut off mid-item is read again, never half kept', async () => {
      let cut = true;
      server.handler = (req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        const second = url.searchParams.get('continue') === 'p2';
        const items = second
          ? [{ metadata: { name: 'c' } }]
          : [{ metadata: { name: 'a' } }, { metadata: { name: 'b' } }];
        const body = JSON.stringify({
          kind: 'SecretList',
          metadata: { resourceVersion: '9', ...(second ? {} : { continue: 'p2' }) },
          items,
        });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
        if (second && cut) {
          // The connection drops inside the item: the client must not take a shorter list.
          cut = false;
          res.write(body.slice(0, body.indexOf('"c"')));
          res.socket?.destroy();
          return;
        }
        res.end(body);
      };
      client = server.client(FAST_RETRIES);
      const mapped: string[] = [];
      const list = await client.list<KubeObject, string>(
        '/api/v1/secrets',
        {},
        {
          pageSize: 2,
          map: (o) => {
            mapped.push(o.metadata.name);
            return o.metadata.name.toUpperCase();
          },
        },
      );
      expect(list.items).to.deep.equal(['A', 'B', 'C']);
      expect(list.metadata.resourceVersion).to.equal('9');
      expect(server.seen.map((r) => r.path)).to.deep.equal(['/api/v1/secrets', '/api/v1/secrets', '/api/v1/secrets']);
      expect(mapped).to.deep.equal(['a', 'b', 'c']);
    });

    it('sends an encoded body as given, and drains an answer the caller does not read', async () => {
      server.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"kind":"Secret","data":{"k":"dmFsdWU="}}');
      };
      client = server.client();
      const answer = await client.request('PUT', '/api/v1/namespaces/n/secrets/s', {
        body: { metadata: { name: 's', resourceVersion: '1' } },
        encodedBody: Buffer.from('{"metadata":{"name":"s","resourceVersion":"1"},"data":{}}'),
        discardBody: true,
      });
      expect(answer).to.equal(undefined);
      expect(server.seen.map((r) => r.body)).to.deep.equal([
        '{"metadata":{"name":"s","resourceVersion":"1"},"data":{}}',
      ]);
    });

    it('never quotes an answer that is not JSON in its error (it may be a Secret)', async () => {
      server.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"data":{"password":hunter2}}');
      };
      client = server.client();
      const { error } = await settle(client.get('/api/v1/namespaces/n/secrets/s'), 5_000);
      expect(error).to.be.instanceOf(KubeTransportError);
      expect(String((error as Error).message)).not.to.include('hunter2');
    });
  });

  describe('the write fence', () => {
    it('checks the lease again once the connection is up, right before the write leaves (a stop in the connect sends nothing)', async () => {
      // The first checks (before and after the rate wait) pass; the lease lapses while the connection is
      // made, as when the process is stopped in the middle of a connect: the write must not be sent.
      let checks = 0;
      let held = true;
      const fence = {
        assertHeld: () => {
          checks += 1;
          if (!held) throw new NotLeaderError();
        },
        signal: new AbortController().signal,
      };
      client = server.client({ fence });
      const write = client.request('POST', '/api/v1/namespaces/n/secrets', { body: { metadata: { name: 's' } } });
      held = false;
      const { error } = await settle(write, 5_000);
      expect(error).to.be.instanceOf(NotLeaderError);
      expect(checks, 'lease checks').to.be.greaterThan(1);
      expect(server.seen, 'requests the server received').to.deep.equal([]);
    });

    it("guards every write made in a shard's scope (withFence) by that shard's fence too; reads and other scopes are free", async () => {
      let held = false;
      const shard = {
        assertHeld: () => {
          if (!held) throw new NotShardOwnerError(3);
        },
        signal: new AbortController().signal,
      };
      const c = server.client({ fence: { assertHeld: () => {}, signal: new AbortController().signal } });
      client = c;
      const post = () => c.request('POST', '/api/v1/namespaces/n/secrets', { body: { metadata: { name: 's' } } });
      const refused = await settle(
        c.withFence(shard, () => post()),
        5_000,
      );
      expect(refused.error).to.be.instanceOf(NotShardOwnerError);
      // Deep in the scope (after awaits and a timer) the fence still applies; a read does not check it.
      const deep = await settle(
        c.withFence(shard, async () => {
          await c.get('/api/v1/namespaces/n/secrets/s');
          await new Promise((resolve) => setTimeout(resolve, 5));
          return post();
        }),
        5_000,
      );
      expect(deep.error).to.be.instanceOf(NotShardOwnerError);
      expect(server.seen.map((r) => r.method)).to.deep.equal(['GET']);
      await post(); // outside any scope: only the client's fence
      held = true;
      await c.withFence(shard, () => post());
      expect(server.seen.map((r) => r.method)).to.deep.equal(['GET', 'POST', 'POST']);
    });

    it("aborts a write in flight when its shard is lost, with the shard's error", async () => {
      const lost = new AbortController();
      const shard = { assertHeld: () => {}, signal: lost.signal };
      server.handler = () => {
        // Never answered: the write is in flight when the shard goes.
        lost.abort(new NotShardOwnerError(5));
      };
      const c = server.client(FAST_RETRIES);
      client = c;
      const { error } = await settle(
        c.withFence(shard, () =>
          c.request('PUT', '/api/v1/namespaces/n/secrets/s', { body: { metadata: { name: 's' } } }),
        ),
        5_000,
      );
      expect(error).to.be.instanceOf(NotShardOwnerError);
      expect(server.seen).to.have.length(1);
    });

    it('sends a write whose lease is held at the moment it leaves', async () => {
      const fence = { assertHeld: () => {}, signal: new AbortController().signal };
      client = server.client({ fence });
      await client.request('POST', '/api/v1/namespaces/n/secrets', { body: { metadata: { name: 's' } } });
      expect(server.seen.map((r) => r.method)).to.deep.equal(['POST']);
    });
  });

  describe('errors', () => {
    it('classifies answers: terminal for the caller to fix, transient otherwise, Status reason kept', async () => {
      const codes: [number, string][] = [
        [400, 'BadRequest'],
        [403, 'Forbidden'],
        [404, 'NotFound'],
        [409, 'AlreadyExists'],
        [409, 'Conflict'],
        [410, 'Expired'],
        [422, 'Invalid'],
        [500, 'InternalError'],
      ];
      client = server.client({ ...FAST_RETRIES, maxAttempts: 1 });
      const seen: Record<string, unknown>[] = [];
      for (const [code, reason] of codes) {
        server.handler = (_req, res) => status(res, code, reason);
        const { error } = await settle(client.request('POST', '/api/v1/namespaces/a/secrets', { body: {} }), 3_000);
        const e = error as KubeApiError;
        seen.push({ code: e.status, statusReason: e.statusReason, retry: e.retry, reason: e.reason });
        expect(e.message).to.equal(`POST /api/v1/namespaces/a/secrets: said ${reason}`);
      }
      expect(seen.map((s) => `${String(s.code)} ${String(s.statusReason)} ${String(s.retry)}`)).to.deep.equal([
        '400 BadRequest terminal',
        '403 Forbidden terminal',
        '404 NotFound terminal',
        '409 AlreadyExists transient',
        '409 Conflict transient',
        '410 Expired transient',
        '422 Invalid terminal',
        '500 InternalError transient',
      ]);
      expect(new Set(seen.map((s) => s.reason))).to.deep.equal(new Set(['WriteFailed']));
      const notFound = new KubeApiError(404, 'NotFound', 'x');
      const exists = new KubeApiError(409, 'AlreadyExists', 'x');
      const conflict = new KubeApiError(409, 'Conflict', 'x');
      expect([isNotFound(notFound), isNotFound(exists)]).to.deep.equal([true, false]);
      expect([isAlreadyExists(exists), isAlreadyExists(conflict)]).to.deep.equal([true, false]);
      expect([isConflict(conflict), isConflict(exists), isConflict(notFound)]).to.deep.equal([true, true, false]);
    });

    it('never quotes a response body that is not a Status', async () => {
      server.handler = (_req, res) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('password=hunter2');
      };
      client = server.client({ maxAttempts: 1 });
      const { error } = await settle(client.get('/api/v1/x'), 3_000);
      expect((error as Error).message).to.equal('GET /api/v1/x: HTTP 500');
    });

    it('reads Retry-After as seconds or an HTTP date', () => {
      const now = Date.parse('2026-01-01T00:00:00Z');
      expect(parseRetryAfter('3', now)).to.equal(3_000);
      expect(parseRetryAfter(' 0 ', now)).to.equal(0);
      expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).to.equal(5_000);
      expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).to.equal(0);
      expect(parseRetryAfter('soon', now)).to.equal(undefined);
      expect(parseRetryAfter('-1', now)).to.equal(undefined);
      expect(parseRetryAfter(undefined, now)).to.equal(undefined);
    });

    it('takes retryAfterSeconds from the Status when there is no header', async () => {
      server.handler = (_req, res) => {
        res.writeHead(429, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ kind: 'Status', reason: 'TooManyRequests', code: 429, details: { retryAfterSeconds: 7 } }),
        );
      };
      client = server.client({ requestTimeoutMs: 2_000 });
      const { error } = await settle(client.get('/api/v1/x'), 3_000);
      expect((error as KubeApiError).retryAfterMs).to.equal(7_000);
    });
  });

  describe('the rate budget', () => {
    it('lets the caller signal end the wait for a token', async () => {
      client = server.client({ qps: 0.5, burst: 1 });
      await client.get('/api/v1/x');
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('no longer wanted')), 100);
      const { error, elapsed } = await settle(client.get('/api/v1/x', undefined, { signal: controller.signal }), 3_000);
      expect((error as Error).message).to.equal('no longer wanted');
      expect(elapsed).to.be.below(500);
      expect(server.seen).to.have.length(1);
    });

    it('bounds the wait for a token by the request deadline', async () => {
      client = server.client({ qps: 0.5, burst: 1, requestTimeoutMs: 200 });
      await client.get('/api/v1/x');
      const { error, elapsed } = await settle(client.get('/api/v1/y'), 3_000);
      expect(error).to.be.instanceOf(DeadlineError);
      expect((error as Error).message).to.equal('GET /api/v1/y: no answer within 0.2s');
      expect(elapsed).to.be.below(700);
      expect(server.seen).to.have.length(1);
    });
  });

  describe('watch', () => {
    const watchEvents = (c: KubeClient, signal: AbortSignal, opts: { idleTimeoutMs?: number } = {}) => {
      const events: { type: string; object: KubeObject }[] = [];
      const done = c.watch('/api/v1/secrets', {}, (type, object) => events.push({ type, object }), signal, opts);
      return { events, done };
    };

    it('keeps a character that the network cut between chunks whole, at every cut', async () => {
      const note = 'pässwörd 😀 €';
      const line = Buffer.from(
        `${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 's', annotations: { note } } } })}\n`,
        'utf8',
      );
      const emoji = line.indexOf(Buffer.from('😀'));
      for (const cut of [emoji + 1, emoji + 2, emoji + 3, line.indexOf(Buffer.from('ä')) + 1]) {
        server.handler = (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.flushHeaders();
          res.write(line.subarray(0, cut));
          // Apart in time, so that the client reads them as two chunks.
          setTimeout(() => res.end(line.subarray(cut)), 30);
        };
        client ??= server.client();
        const { events, done } = watchEvents(client, new AbortController().signal);
        await settle(done, 3_000);
        expect(
          events.map((e) => e.object.metadata.annotations?.note),
          `cut at byte ${cut}`,
        ).to.deep.equal([note]);
      }
    });

    it('ends a stream that brings nothing within the idle timeout with WatchIdleError', async () => {
      server.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '5' } } })}\n`);
      };
      client = server.client();
      const { events, done } = watchEvents(client, new AbortController().signal, { idleTimeoutMs: 200 });
      const { error, elapsed } = await settle(done, 3_000);
      expect(error).to.be.instanceOf(WatchIdleError).and.instanceOf(DeadlineError);
      expect((error as Error).message).to.equal('watch /api/v1/secrets: nothing (no event, no bookmark) within 0.2s');
      expect(events.map((e) => e.type)).to.deep.equal(['BOOKMARK']);
      expect(elapsed).to.be.within(150, 1_000);
    });

    it('resets the idle timer on every event', async () => {
      server.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        let n = 0;
        const timer = setInterval(() => {
          res.write(
            `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(++n) } } })}\n`,
          );
          if (n === 6) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
      };
      client = server.client();
      const { events, done } = watchEvents(client, new AbortController().signal, { idleTimeoutMs: 250 });
      const { error } = await settle(done, 3_000);
      expect(error).to.equal(undefined);
      expect(events).to.have.length(6);
    });

    it('keeps watches off the sockets of requests: more watches than maxSockets do not stall a read', async () => {
      server.handler = (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        if (req.url?.includes('watch=true')) res.flushHeaders();
        else res.end('{"ok":1}');
      };
      client = server.client({ maxSockets: 2 });
      const controller = new AbortController();
      const watches = [1, 2, 3].map(() => watchEvents(client!, controller.signal, { idleTimeoutMs: 10_000 }).done);
      while (server.seen.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
      const { value, error } = await settle(client.get('/api/v1/x'), 2_000);
      expect(error).to.equal(undefined);
      expect(value).to.deep.equal({ ok: 1 });
      controller.abort();
      await Promise.all(watches);
    });

    it('bounds the wait for response headers by the request timeout', async () => {
      server.handler = () => undefined;
      client = server.client({ requestTimeoutMs: 200 });
      const { error } = await settle(watchEvents(client, new AbortController().signal).done, 3_000);
      expect(error).to.be.instanceOf(DeadlineError);
      expect((error as Error).message).to.equal('watch /api/v1/secrets: no response within 0.2s');
    });

    it('returns quietly when its signal aborts, and reports an error status with Retry-After', async () => {
      server.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
      };
      client = server.client();
      const controller = new AbortController();
      const { done } = watchEvents(client, controller.signal, { idleTimeoutMs: 5_000 });
      setTimeout(() => controller.abort(), 50);
      expect((await settle(done, 3_000)).error).to.equal(undefined);

      server.handler = (_req, res) => status(res, 429, 'TooManyRequests', { 'retry-after': '2' });
      const { error } = await settle(watchEvents(client, new AbortController().signal).done, 3_000);
      expect((error as KubeApiError).status).to.equal(429);
      expect((error as KubeApiError).retryAfterMs).to.equal(2_000);
      expect((error as Error).message).to.equal('watch /api/v1/secrets: HTTP 429');
    });
  });
});

/** A TCP server that accepts connections and never sends a byte (a TLS peer that never answers). */
async function silentTcpServer(): Promise<{ tcp: TcpServer; accepted: () => number }> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const tcp = createTcpServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  (tcp as TcpServer & { sockets?: Set<Socket> }).sockets = sockets;
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  return { tcp, accepted: () => accepted };
}

async function closeTcp(tcp: TcpServer): Promise<void> {
  for (const s of (tcp as TcpServer & { sockets?: Set<Socket> }).sockets ?? []) s.destroy();
  await new Promise<void>((resolve) => tcp.close(() => resolve()));
}
