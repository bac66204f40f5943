// VaultHttp against a small local HTTP server that answers like Vault does in
// the cases a dev Vault server cannot be made to produce on demand (503 with
// Retry-After, a hanging answer, a hostile error body) and records what it was
// sent (the namespace header, which Vault OSS refuses to act on).
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeadlineError } from '../../../../src/api/errors.js';
import { RegionHealth } from '../../../../src/providers/failover.js';
import { RequestBudget } from '../../../../src/providers/budget.js';
import { KeyNotFoundError, ProviderConfigError, ProviderError } from '../../../../src/providers/provider.js';
import { VaultTokenManager } from '../../../../src/providers/vault/auth.js';
import {
  VaultPermissionError,
  VaultRequestError,
  VaultSealedError,
  isVaultAvailabilityError,
} from '../../../../src/providers/vault/errors.js';
import { VaultHttp, normalisePath, type VaultHttpOptions } from '../../../../src/providers/vault/http.js';
import { rejectionOf } from '../../helpers/index.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: Seen, res: ServerResponse) => void;

/** A local server: answers with `handler`, records every request. */
class Recorder {
  readonly seen: Seen[] = [];
  handler: Handler = (_req, res) => json(res, 200, {});
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Recorder> {
    const holder: { recorder?: Recorder } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const seen = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        };
        holder.recorder?.seen.push(seen);
        holder.recorder?.handler(seen, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.recorder = new Recorder(server);
    return holder.recorder;
  }

  get address(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

describe('VaultHttp (src/providers/vault/http.ts)', () => {
  let vault: Recorder;
  let other: Recorder;
  const clients: VaultHttp[] = [];

  function client(extra: Partial<VaultHttpOptions> = {}): VaultHttp {
    const http = new VaultHttp({
      store: `SecretStore test/s${clients.length}`,
      addresses: [vault.address],
      breaker: { failureThreshold: 1, openSeconds: 30 },
      timeouts: { connectMs: 1000, requestMs: 500 },
      health: new RegionHealth(),
      ...extra,
    });
    clients.push(http);
    return http;
  }

  beforeEach(async () => {
    vault = await Recorder.start();
    other = await Recorder.start();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all([vault.stop(), other.stop()]);
  });

  it('normalises paths and refuses dot segments', () => {
    expect(normalisePath('/v1/secret/data/a')).to.equal('v1/secret/data/a');
    expect(normalisePath('secret/data/a')).to.equal('v1/secret/data/a');
    expect(() => normalisePath('secret/../sys/seal')).to.throw(/\.\./);
  });

  it('sends the token and the namespace header on every request, and LIST as GET ?list=true', async () => {
    const http = client({ namespace: 'team-a/apps' });
    http.tokens = { token: () => Promise.resolve('s.tok'), invalidate: () => undefined };
    await http.request('GET', 'secret/data/app', { query: { version: 3 } });
    await http.request('LIST', 'v1/secret/metadata/');
    expect(vault.seen.map((s) => `${s.method} ${s.url}`)).to.deep.equal([
      'GET /v1/secret/data/app?version=3',
      'GET /v1/secret/metadata/?list=true',
    ]);
    for (const s of vault.seen) {
      expect(s.headers['x-vault-token']).to.equal('s.tok');
      expect(s.headers['x-vault-namespace']).to.equal('team-a/apps');
    }
  });

  it('maps a sealed Vault to VaultSealed, 429 with Retry-After to a ProviderError that carries it, 404 to KeyNotFound', async () => {
    const http = client();
    vault.handler = (_r, res) => json(res, 503, { errors: ['Vault is sealed'] });
    const sealed = await rejectionOf(http.request('GET', 'secret/data/a', { anonymous: true }));
    expect(sealed).to.be.instanceOf(VaultSealedError);
    expect((sealed as VaultSealedError).reason).to.equal('VaultSealed');
    expect((sealed as VaultSealedError).transient).to.equal(true);

    vault.handler = (_r, res) => json(res, 429, { errors: ['rate limited'] }, { 'retry-after': '7' });
    const throttled = await rejectionOf(http.request('GET', 'secret/data/a', { anonymous: true }));
    expect(throttled).to.be.instanceOf(ProviderError);
    expect((throttled as ProviderError).retryAfterMs).to.equal(7000);
    expect(isVaultAvailabilityError(throttled)).to.equal(true);

    vault.handler = (_r, res) => json(res, 404, { errors: [] });
    const missing = await rejectionOf(http.request('GET', 'secret/data/a', { anonymous: true, key: 'a' }));
    expect(missing).to.be.instanceOf(KeyNotFoundError);
    expect(isVaultAvailabilityError(missing)).to.equal(false);
  });

  it('never puts a body into a message', async () => {
    const http = client();
    vault.handler = (_r, res) => json(res, 400, { errors: ['the value hunter2-SECRET is not allowed'] });
    const err = await rejectionOf(
      http.request('POST', 'secret/data/a', { anonymous: true, body: { password: 'hunter2' } }),
    );
    expect(err).to.be.instanceOf(VaultRequestError);
    expect(err.message).to.contain('HTTP 400').and.not.contain('hunter2');
    expect((err as VaultRequestError).vaultErrors).to.deep.equal(['the value hunter2-SECRET is not allowed']);
    expect(JSON.stringify(err)).to.not.contain('hunter2');

    vault.handler = (_r, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>hunter2</html>');
    };
    const notJson = await rejectionOf(http.request('GET', 'secret/data/a', { anonymous: true }));
    expect(notJson.message).to.contain('not JSON').and.not.contain('hunter2');
  });

  it('tells a refused token (re-login once) from a missing policy (PermissionDenied, no re-login)', async () => {
    const http = client();
    let logins = 0;
    const tokens = new VaultTokenManager(
      http,
      () => {
        logins += 1;
        return Promise.resolve({ token: `tok-${logins}`, ttlSeconds: 3600, renewable: true });
      },
      'test',
    );
    http.tokens = tokens;
    // tok-1 is revoked: every request with it is refused, lookup-self too.
    vault.handler = (req, res) => {
      const token = req.headers['x-vault-token'];
      if (token === 'tok-1') return json(res, 403, { errors: ['permission denied'] });
      if (req.url.startsWith('/v1/secret/data/forbidden')) return json(res, 403, { errors: ['permission denied'] });
      return json(res, 200, { data: { ok: true } });
    };
    expect(await http.request('GET', 'secret/data/a')).to.deep.equal({ data: { ok: true } });
    expect(logins).to.equal(2);
    expect(tokens.stats.logins).to.equal(2);

    const denied = await rejectionOf(http.request('GET', 'secret/data/forbidden'));
    expect(denied).to.be.instanceOf(VaultPermissionError);
    expect(denied).to.be.instanceOf(ProviderConfigError);
    expect((denied as VaultPermissionError).reason).to.equal('PermissionDenied');
    expect((denied as VaultPermissionError).clientUnusable).to.equal(false);
    expect(logins, 'a policy denial does not log in again').to.equal(2);
    expect(denied.message).to.not.contain('tok-');
  });

  it('renews at two thirds of the TTL, and logs in again when renewal stops extending the token', async () => {
    const http = client();
    let now = 1_000_000;
    let logins = 0;
    const tokens = new VaultTokenManager(
      http,
      () => {
        logins += 1;
        return Promise.resolve({ token: `tok-${logins}`, ttlSeconds: 60, renewable: true });
      },
      'test',
      () => now,
    );
    http.tokens = tokens;
    let renewTtl = 60;
    vault.handler = (req, res) => {
      if (req.url === '/v1/auth/token/renew-self')
        return json(res, 200, {
          auth: { client_token: req.headers['x-vault-token'], lease_duration: renewTtl, renewable: true },
        });
      return json(res, 200, {});
    };
    await http.request('GET', 'secret/data/a');
    now += 39_000; // before 2/3 of 60 s
    await http.request('GET', 'secret/data/a');
    expect(vault.seen.filter((s) => s.url.includes('renew-self'))).to.have.length(0);
    now += 2_000; // past 40 s
    await http.request('GET', 'secret/data/a');
    expect(vault.seen.filter((s) => s.url.includes('renew-self'))).to.have.length(1);
    expect(tokens.stats.renewals).to.equal(1);
    expect(tokens.expiresAt()).to.equal(now + 60_000);
    // Near max TTL: the renewal gives 10 s only, so the manager logs in again.
    renewTtl = 10;
    now += 41_000;
    await http.request('GET', 'secret/data/a');
    expect(logins).to.equal(2);
    expect(vault.seen.at(-1)?.headers['x-vault-token']).to.equal('tok-2');
  });

  it('fails over to the next address on 5xx, reports the serving host, and never on 403', async () => {
    const health = new RegionHealth();
    const moves: string[] = [];
    const http = client({
      addresses: [vault.address, other.address],
      health,
      onFailover: (m) => moves.push(`${m.fromEndpoint ?? ''}->${m.toEndpoint ?? ''}`),
    });
    other.handler = (_r, res) => json(res, 200, { from: 'standby' });
    vault.handler = (_r, res) => json(res, 500, { errors: ['boom'] });
    expect(await http.request('GET', 'secret/data/a', { anonymous: true })).to.deep.equal({ from: 'standby' });
    const served = http.servedRegion();
    expect(served?.region).to.equal('vault');
    expect(served?.endpoint).to.equal(new URL(other.address).host);
    expect(served?.primary).to.equal(false);
    expect(moves).to.have.length(1);

    // A 403 from the standby is an answer: not passed on.
    other.handler = (_r, res) => json(res, 403, { errors: ['permission denied'] });
    const denied = await rejectionOf(http.request('GET', 'secret/data/a', { anonymous: true }));
    expect(denied).to.be.instanceOf(VaultPermissionError);
    expect(vault.seen).to.have.length(1, 'the primary circuit is open: skipped');
  });

  it("bounds a hanging answer by the request deadline and stops at once on the caller's signal", async () => {
    const http = client();
    vault.handler = () => undefined; // never answers
    const started = Date.now();
    const timedOut = await rejectionOf(http.request('GET', 'secret/data/a', { anonymous: true }));
    expect(timedOut).to.be.instanceOf(ProviderError);
    expect(timedOut.message).to.contain('ERR_REQUEST_TIMEOUT');
    expect(Date.now() - started).to.be.lessThan(2000);

    const controller = new AbortController();
    setTimeout(() => controller.abort(new DeadlineError('sync deadline passed')), 50);
    const aborted = await rejectionOf(
      http.request('GET', 'secret/data/a', { anonymous: true, signal: controller.signal }),
    );
    expect(aborted).to.be.instanceOf(DeadlineError);
    expect(aborted.message).to.equal('sync deadline passed');
  });

  it('takes one budget token per request', async () => {
    const budget = new RequestBudget(1000);
    const http = client({ budget });
    await http.request('GET', 'a', { anonymous: true });
    await http.request('GET', 'b', { anonymous: true });
    expect(budget.used).to.equal(2);
  });
});
