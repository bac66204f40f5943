// The AWS providers against endpoints that misbehave, through the real SDK
// clients: one that never answers (timeouts; cancellation), one that throttles
// with Retry-After, one that answers an HTML error page with secret-looking
// text (kept out of messages), and moto behind a request budget (a cancelled
// wait returns at once). Each test bounds its own wait, so a regression shows
// as a failure naming the wait, not as a hung suite.
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { expect } from 'chai';
import { DeadlineError } from '../../../src/api/errors.js';
import type { AwsSecretsManagerProviderSpec } from '../../../src/api/types.js';
import { awsKmsProvider } from '../../../src/providers/aws-kms/index.js';
import { awsParameterStoreProvider } from '../../../src/providers/aws-parameter-store/index.js';
import { awsSecretsManagerProvider } from '../../../src/providers/aws-secrets-manager/index.js';
import {
  ProviderConfigError,
  ProviderError,
  type FailoverMove,
  type ProviderClient,
} from '../../../src/providers/provider.js';
import { sharedMoto } from '../env.js';
import { awsClusterStore, memoryContext, motoKeys, type CountingContext } from './aws-context.js';
import {
  answeringEndpoint,
  hangingEndpoint,
  refusingEndpoint,
  timed,
  within,
  type FakeEndpoint,
} from './fake-endpoints.js';

const SECRET_BODY =
  '<html><head><title>502</title></head><body>upstream said: password=hunter2 token=AKIAIOSFODNN7EXAMPLE ' +
  `${'lorem ipsum '.repeat(60)}</body></html>`;

describe('AWS providers: faults (hanging, throttling, HTML answers, cancellation)', () => {
  const endpoints: FakeEndpoint[] = [];
  const clients: ProviderClient[] = [];

  async function smClient(
    spec: Partial<AwsSecretsManagerProviderSpec>,
    timeouts?: { connectMs: number; requestMs: number },
    name = 'faults',
  ): Promise<{ client: ProviderClient; ctx: CountingContext }> {
    const ctx = memoryContext(motoKeys.secrets, undefined);
    if (timeouts) ctx.timeouts = timeouts;
    const store = awsClusterStore(
      'awsSecretsManager',
      { region: sharedMoto().region, auth: motoKeys.auth, ...spec } as AwsSecretsManagerProviderSpec,
      name,
    );
    const client = await awsSecretsManagerProvider.connect(store, ctx);
    clients.push(client);
    return { client, ctx };
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const e of endpoints.splice(0)) await e.close();
  });

  it('an endpoint that accepts and never answers fails within the request timeout, not after minutes', async function () {
    this.timeout(30_000);
    const hanging = await hangingEndpoint();
    endpoints.push(hanging);
    const { client } = await smClient({ endpoint: hanging.url }, { connectMs: 1000, requestMs: 1000 });
    const { ms, error } = await timed(within(client.getValue({ key: 'app/db' }), 15_000));
    expect(error?.message).to.not.match(/still waiting/);
    expect(error).to.be.instanceOf(ProviderError);
    expect(error?.message).to.contain('GetSecretValue "app/db"').and.contain('TimeoutError');
    // Three attempts of one second each, and the SDK's short back-off between them.
    expect(hanging.hits).to.equal(3);
    expect(ms).to.be.within(2900, 8000);
  });

  it('a cancelled call returns at once, though the endpoint never answers and the request timeout is long', async function () {
    this.timeout(30_000);
    const hanging = await hangingEndpoint();
    endpoints.push(hanging);
    const { client } = await smClient({ endpoint: hanging.url }, { connectMs: 60_000, requestMs: 60_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new DeadlineError('sync of team-a/db passed its deadline')), 300);
    const { ms, error } = await timed(
      within(client.getValue({ key: 'app/db' }, { signal: controller.signal }), 10_000),
    );
    expect(error).to.be.instanceOf(DeadlineError);
    expect(error?.message).to.equal('sync of team-a/db passed its deadline');
    expect(ms).to.be.below(2000);
  });

  it('a cancelled call returns at once while credentials are still being fetched from a hanging STS', async function () {
    this.timeout(30_000);
    const hanging = await hangingEndpoint();
    endpoints.push(hanging);
    // roleArn: the first request must first wait for AssumeRole at the (hanging) endpoint.
    const { client } = await smClient(
      { endpoint: hanging.url, roleArn: 'arn:aws:iam::123456789012:role/reader' },
      { connectMs: 60_000, requestMs: 60_000 },
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const { ms, error } = await timed(within(client.check({ signal: controller.signal }), 10_000));
    expect(error).to.be.instanceOf(DeadlineError);
    expect(error?.message).to.contain('ListSecrets');
    expect(ms).to.be.below(2000);
  });

  it('against moto: a call waiting for the store’s request budget leaves at once when cancelled', async function () {
    this.timeout(30_000);
    await sharedMoto().reset();
    const sm = new SecretsManagerClient(sharedMoto().clientConfig());
    await sm.send(new CreateSecretCommand({ Name: 'budget/a', SecretString: 'va' }));
    sm.destroy();
    // One request per 20 s, burst 1: the second request waits about 20 s for its token.
    const { client, ctx } = await smClient(
      { endpoint: sharedMoto().endpoint, requestsPerSecond: 0.05 },
      undefined,
      'budget',
    );
    expect(await client.getValue({ key: 'budget/a' })).to.equal('va');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const { ms, error } = await timed(
      within(client.getValue({ key: 'budget/a' }, { signal: controller.signal }), 10_000),
    );
    expect(error).to.be.instanceOf(DeadlineError);
    expect(ms).to.be.below(2000);
    // The cancelled call never reached moto.
    expect(ctx.count('GetSecretValue')).to.equal(1);
    // An already cancelled call does not even queue.
    expect((await timed(client.getValue({ key: 'budget/a' }, { signal: controller.signal }))).error).to.be.instanceOf(
      DeadlineError,
    );
  });

  it('throttling: a ProviderError carrying the server’s Retry-After, after a bounded number of attempts; the client stays', async function () {
    this.timeout(30_000);
    const throttling = await answeringEndpoint((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'retry-after': '1' });
      res.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
    });
    endpoints.push(throttling);
    const { client } = await smClient({ endpoint: throttling.url });
    const { error } = await timed(within(client.getValue({ key: 'app/db' }), 20_000));
    expect(error).to.be.instanceOf(ProviderError);
    const err = error as ProviderError;
    expect(err.retryAfterMs).to.equal(1000);
    expect(err.clientUnusable).to.equal(false);
    expect(err.retry).to.equal('transient');
    expect(err.message).to.equal('Secrets Manager GetSecretValue "app/db": ThrottlingException: Rate exceeded');
    expect(throttling.hits).to.equal(3);
  });

  it('an HTML error page with secret-looking text: the message has the status, never the body', async function () {
    this.timeout(120_000);
    for (const status of [500, 429, 200]) {
      const html = await answeringEndpoint((_req, res) => {
        res.writeHead(status, { 'content-type': 'text/html', ...(status === 429 ? { 'retry-after': '1' } : {}) });
        res.end(SECRET_BODY);
      });
      endpoints.push(html);
      const { client } = await smClient({ endpoint: html.url }, undefined, `html-${status}`);
      const ps = await awsParameterStoreProvider.connect(
        awsClusterStore(
          'awsParameterStore',
          { region: 'us-east-1', endpoint: html.url, auth: motoKeys.auth },
          `html-ps-${status}`,
        ),
        memoryContext(motoKeys.secrets, undefined),
      );
      clients.push(ps);
      const kms = await awsKmsProvider.connect(
        {
          apiVersion: 'secretsync.io/v1alpha1',
          kind: 'ClusterSecretStore',
          metadata: { name: `html-kms-${status}` },
          spec: { provider: { awsKms: { region: 'us-east-1', endpoint: html.url, auth: motoKeys.auth } } },
        },
        memoryContext(motoKeys.secrets, undefined),
      );
      clients.push(kms);
      // STS at the same endpoint: AssumeRole gets the page too.
      const { client: viaRole } = await smClient(
        { endpoint: html.url, roleArn: 'arn:aws:iam::123456789012:role/reader' },
        undefined,
        `html-role-${status}`,
      );
      const calls: (() => Promise<unknown>)[] = [
        () => client.getValue({ key: 'app/db' }),
        () => ps.getValue({ key: '/app/db' }),
        () => kms.check(),
        () => viaRole.getValue({ key: 'app/db' }),
      ];
      for (const call of calls) {
        const { error } = await timed(within(call(), 20_000));
        expect(error, `HTTP ${status}`).to.be.instanceOf(Error);
        const message = error?.message ?? '';
        expect(message, message).to.not.match(/hunter2|AKIA|lorem|<html|<title|upstream/);
        expect(message.length, message).to.be.below(300);
        // The status (or STS's "no credentials" for a 200 it could not read), never the body.
        expect(message, message).to.match(new RegExp(`HTTP ${status}|returned no credentials`));
        if (status === 429 && error instanceof ProviderError && !message.includes('STS'))
          expect(error.retryAfterMs).to.equal(1000);
      }
    }
  });

  it('expired credentials make the client unusable; AccessDenied on a key does not', async function () {
    this.timeout(30_000);
    let code = 'ExpiredTokenException';
    const denying = await answeringEndpoint((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ __type: code, message: `${code} for this request` }));
    });
    endpoints.push(denying);
    const { client } = await smClient({ endpoint: denying.url });
    const expired = (await timed(client.getValue({ key: 'app/db' }))).error as ProviderConfigError;
    expect(expired).to.be.instanceOf(ProviderConfigError);
    expect(expired.clientUnusable).to.equal(true);
    code = 'AccessDeniedException';
    const denied = (await timed(client.getValue({ key: 'app/db' }))).error as ProviderConfigError;
    expect(denied).to.be.instanceOf(ProviderConfigError);
    expect(denied.clientUnusable).to.equal(false);
    expect(denied.retry).to.equal('transient');
    // Neither was retried by the SDK: one request each.
    expect(denying.hits).to.equal(2);
  });

  it('a failover move is reported to the context’s onFailover, not to a global', async function () {
    this.timeout(30_000);
    await sharedMoto().reset();
    const sm = new SecretsManagerClient(sharedMoto().clientConfig());
    await sm.send(new CreateSecretCommand({ Name: 'moved/a', SecretString: 'v' }));
    sm.destroy();
    const down = await refusingEndpoint();
    endpoints.push(down);
    const moves: FailoverMove[] = [];
    const ctx = memoryContext(motoKeys.secrets, undefined);
    ctx.onFailover = (move) => moves.push(move);
    const client = await awsSecretsManagerProvider.connect(
      awsClusterStore(
        'awsSecretsManager',
        {
          region: sharedMoto().region,
          endpoint: down.url,
          auth: motoKeys.auth,
          failover: [{ endpoint: sharedMoto().endpoint }],
        },
        'moves',
      ),
      ctx,
    );
    clients.push(client);
    expect(await client.getValue({ key: 'moved/a' })).to.equal('v');
    expect(moves).to.deep.equal([
      {
        provider: 'awsSecretsManager',
        store: 'ClusterSecretStore moves',
        from: sharedMoto().region,
        to: sharedMoto().region,
        fromEndpoint: new URL(down.url).host,
        toEndpoint: new URL(sharedMoto().endpoint).host,
        toPrimary: false,
      },
    ]);
    awsSecretsManagerProvider.forgetStore?.(
      awsClusterStore('awsSecretsManager', { region: sharedMoto().region }, 'moves'),
    );
  });
});
