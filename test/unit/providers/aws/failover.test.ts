import { expect } from 'chai';
import { DeadlineError } from '../../../../src/api/errors.js';
import { rejectionOf } from '../../helpers/index.js';
import { describeAwsFailure, isAvailabilityError, mapAwsError } from '../../../../src/providers/aws/errors.js';
import {
  RegionHealth,
  RegionalClients,
  breakerSettings,
  endpointHost,
  isMultiRegionKey,
  keyIdInRegion,
  targetHost,
  type FailoverEvent,
  type RegionTarget,
} from '../../../../src/providers/aws/failover.js';
import {
  DecryptError,
  KeyNotFoundError,
  ProviderConfigError,
  ProviderError,
} from '../../../../src/providers/provider.js';

/** An SDK service exception: `name` is the AWS error code, `$metadata` the HTTP status. */
function serviceError(name: string, status: number): Error {
  return Object.assign(new Error(`${name} happened`), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

/** What Node's HTTP layer throws when nothing listens on the port. */
function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', errno: -111 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('regional failover: which errors fail over', () => {
  const availability: [string, unknown][] = [
    ['connection refused', refused()],
    ['connection reset', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['a DNS failure', Object.assign(new Error('getaddrinfo ENOTFOUND kms.example'), { code: 'ENOTFOUND' })],
    ['an SDK timeout', Object.assign(new Error('Connection timed out after 3000 ms'), { name: 'TimeoutError' })],
    ['every address of a host refused (AggregateError)', new AggregateError([refused(), refused()], '')],
    ['a 500', serviceError('InternalServiceError', 500)],
    ['a 503 without a known code', serviceError('Unknown', 503)],
    ['KMS internal errors', Object.assign(new Error('x'), { name: 'KMSInternalException' })],
    ['throttling after the SDK retries', serviceError('ThrottlingException', 400)],
    ['a 429', serviceError('TooManyRequestsException', 429)],
    [
      'our ProviderError wrapping a refused connection (STS unreachable)',
      new ProviderError('STS AssumeRole: unreachable', { cause: refused() }),
    ],
    [
      'a mapped SDK error (ProviderError with the SDK error as cause)',
      mapAwsError(serviceError('InternalServiceError', 500), {
        service: 'Secrets Manager',
        operation: 'GetSecretValue',
      }),
    ],
  ];
  for (const [what, err] of availability) {
    it(`${what}: fails over`, () => expect(isAvailabilityError(err)).to.equal(true));
  }

  const stays: [string, unknown][] = [
    ['not found', serviceError('ResourceNotFoundException', 400)],
    ['a missing parameter', serviceError('ParameterNotFound', 400)],
    ['access denied', serviceError('AccessDeniedException', 400)],
    ['bad credentials', serviceError('UnrecognizedClientException', 400)],
    ['an invalid request', serviceError('ValidationException', 400)],
    ['a KMS ciphertext refused', serviceError('InvalidCiphertextException', 400)],
    ['a disabled key', serviceError('DisabledException', 400)],
    ['our KeyNotFoundError', new KeyNotFoundError('secret "a" not found', 'a')],
    ['our ProviderConfigError', new ProviderConfigError('region must be an AWS region')],
    ['our DecryptError', new DecryptError('KMS refused to decrypt it')],
    ['a ProviderError without an availability cause', new ProviderError('has neither SecretString nor SecretBinary')],
    ['a plain bug', new TypeError('x is undefined')],
    ['not an error at all', 'oops'],
  ];
  for (const [what, err] of stays) {
    it(`${what}: does not fail over`, () => expect(isAvailabilityError(err)).to.equal(false));
  }
});

describe('regional failover: multi-Region key ids', () => {
  it('recognizes mrk- keys, bare or as ARNs', () => {
    expect(isMultiRegionKey('mrk-1234abcd12ab34cd56ef1234567890ab')).to.equal(true);
    expect(isMultiRegionKey('arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd')).to.equal(true);
    expect(isMultiRegionKey('arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab')).to.equal(
      false,
    );
    expect(isMultiRegionKey('alias/mrk-looking-alias')).to.equal(false);
  });

  it("addresses the replica by the same key id with the other region's ARN", () => {
    expect(keyIdInRegion('arn:aws:kms:us-east-1:111122223333:key/mrk-1', 'eu-west-1')).to.equal(
      'arn:aws:kms:eu-west-1:111122223333:key/mrk-1',
    );
    expect(keyIdInRegion('arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1', 'cn-northwest-1')).to.equal(
      'arn:aws-cn:kms:cn-northwest-1:111122223333:key/mrk-1',
    );
    expect(keyIdInRegion('mrk-1', 'eu-west-1')).to.equal('mrk-1');
    // A single-Region key has no replica: unchanged (and never sent elsewhere).
    const single = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(keyIdInRegion(single, 'eu-west-1')).to.equal(single);
  });
});

/** A "client" per region that fails or answers as the test says. */
interface FakeRegion {
  name: string;
  fail?: () => unknown;
  calls: number;
}

function regions(names: string[]) {
  const fakes = new Map<string, FakeRegion>(names.map((name) => [name, { name, calls: 0 }]));
  const list = names.map((name) => ({ target: { region: name }, client: fakes.get(name) as FakeRegion }));
  const call = async (client: FakeRegion) => {
    client.calls += 1;
    const err = client.fail?.();
    if (err !== undefined) throw err;
    return `from ${client.name}`;
  };
  return { fakes, list, call, get: (name: string) => fakes.get(name) as FakeRegion };
}

describe('regional failover: RegionalClients and the circuit breaker', () => {
  let health: RegionHealth;
  let events: FailoverEvent[];
  const onFailover = (e: FailoverEvent) => events.push(e);
  const settings = { failureThreshold: 2, openSeconds: 0.2 };

  beforeEach(() => {
    health = new RegionHealth();
    events = [];
  });

  it('without failover regions, calls go straight to the one region and report no region', async () => {
    const r = regions(['us-east-1']);
    const clients = new RegionalClients(r.list, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    r.get('us-east-1').fail = refused;
    let caught: unknown;
    await clients.run(r.call).catch((e: unknown) => (caught = e));
    expect((caught as { code?: string }).code).to.equal('ECONNREFUSED');
    expect(clients.servedRegion()).to.equal(undefined);
    expect(health.stats()).to.deep.equal([]);
  });

  it('uses the primary while it answers', async () => {
    const r = regions(['us-east-1', 'us-west-2']);
    const clients = new RegionalClients(r.list, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    expect(await clients.run(r.call)).to.equal('from us-east-1');
    expect(clients.servedRegion()).to.deep.equal({ region: 'us-east-1', primary: true });
    expect(r.get('us-west-2').calls).to.equal(0);
    expect(events).to.deep.equal([]);
  });

  it('fails over on availability errors, opens the circuit, then probes the primary and goes back', async () => {
    const r = regions(['us-east-1', 'us-west-2', 'eu-west-1']);
    const clients = new RegionalClients(r.list, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    const east = r.get('us-east-1');
    east.fail = refused;

    expect(await clients.run(r.call)).to.equal('from us-west-2');
    expect(clients.servedRegion()).to.deep.equal({ region: 'us-west-2', primary: false });
    expect(events).to.deep.equal([
      { provider: 'awsSecretsManager', store: 's', from: 'us-east-1', to: 'us-west-2', toPrimary: false },
    ]);
    expect(await clients.run(r.call)).to.equal('from us-west-2');
    expect(east.calls).to.equal(2);
    // Two consecutive failures opened the primary's circuit: it is skipped now.
    expect(health.stats().find((s) => s.region === 'us-east-1')?.open).to.equal(true);
    expect(await clients.run(r.call)).to.equal('from us-west-2');
    expect(east.calls).to.equal(2);
    expect(events).to.have.length(1);

    // After openSeconds one call probes the primary: still down, the circuit opens again.
    await sleep(250);
    expect(await clients.run(r.call)).to.equal('from us-west-2');
    expect(east.calls).to.equal(3);
    expect(await clients.run(r.call)).to.equal('from us-west-2');
    expect(east.calls).to.equal(3);

    // The primary recovers: the next probe closes its circuit and it serves again.
    east.fail = undefined;
    await sleep(250);
    expect(await clients.run(r.call)).to.equal('from us-east-1');
    expect(clients.servedRegion()).to.deep.equal({ region: 'us-east-1', primary: true });
    expect(health.stats().find((s) => s.region === 'us-east-1')?.open).to.equal(false);
    expect(events.at(-1)).to.deep.equal({
      provider: 'awsSecretsManager',
      store: 's',
      from: 'us-west-2',
      to: 'us-east-1',
      toPrimary: true,
    });
    expect(r.get('eu-west-1').calls).to.equal(0);
  });

  it('tries the failover regions in order', async () => {
    const r = regions(['us-east-1', 'us-west-2', 'eu-west-1']);
    const clients = new RegionalClients(r.list, { store: 's', provider: 'awsKms', settings, health, onFailover });
    r.get('us-east-1').fail = refused;
    r.get('us-west-2').fail = () => serviceError('ServiceUnavailableException', 503);
    expect(await clients.run(r.call)).to.equal('from eu-west-1');
    expect(clients.servedRegion()).to.deep.equal({ region: 'eu-west-1', primary: false });
  });

  for (const [what, make] of [
    ['not found', () => new KeyNotFoundError('secret "a" not found', 'a')],
    ['access denied', () => serviceError('AccessDeniedException', 400)],
    ['a configuration error', () => new ProviderConfigError('bad credentials')],
  ] as const) {
    it(`${what} in the primary is the answer: no failover, no breaker count`, async () => {
      const r = regions(['us-east-1', 'us-west-2']);
      const clients = new RegionalClients(r.list, {
        store: 's',
        provider: 'awsSecretsManager',
        settings,
        health,
        onFailover,
      });
      r.get('us-east-1').fail = make;
      for (let i = 0; i < 3; i++) {
        let caught: unknown;
        await clients.run(r.call).catch((e: unknown) => (caught = e));
        expect(caught).to.be.instanceOf(Error);
      }
      expect(r.get('us-east-1').calls).to.equal(3);
      expect(r.get('us-west-2').calls).to.equal(0);
      expect(health.stats().every((s) => !s.open)).to.equal(true);
      expect(events).to.deep.equal([]);
    });
  }

  it('a call the failover regions cannot serve (applies → false) stays with the primary', async () => {
    const r = regions(['us-east-1', 'us-west-2']);
    const clients = new RegionalClients(r.list, { store: 's', provider: 'awsKms', settings, health, onFailover });
    r.get('us-east-1').fail = refused;
    let caught: unknown;
    await clients.run(r.call, () => false).catch((e: unknown) => (caught = e));
    expect((caught as { code?: string }).code).to.equal('ECONNREFUSED');
    expect(r.get('us-west-2').calls).to.equal(0);
  });

  it('when every region is down, the last error names the others; when every circuit is open they are tried anyway', async () => {
    const r = regions(['us-east-1', 'us-west-2']);
    const clients = new RegionalClients(r.list, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    r.get('us-east-1').fail = refused;
    r.get('us-west-2').fail = refused;
    for (let i = 0; i < 2; i++) {
      let caught: unknown;
      await clients.run(r.call).catch((e: unknown) => (caught = e));
      // The raw error is not rewritten; the provider's message (describeAwsFailure) names the others.
      expect(describeAwsFailure(caught)).to.contain('connect ECONNREFUSED').and.contain('also unavailable: us-east-1');
    }
    expect(health.stats().every((s) => s.open)).to.equal(true);
    // Both circuits open: the regions are asked anyway rather than failing without a try.
    r.get('us-west-2').fail = undefined;
    expect(await clients.run(r.call)).to.equal('from us-west-2');
  });

  it('breakers and the active region outlive a client (the controller rebuilds clients)', async () => {
    const r = regions(['us-east-1', 'us-west-2']);
    const first = new RegionalClients(r.list, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    r.get('us-east-1').fail = refused;
    await first.run(r.call);
    await first.run(r.call);
    const second = new RegionalClients(r.list, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    expect(second.servedRegion()).to.deep.equal({ region: 'us-west-2', primary: false });
    const before = r.get('us-east-1').calls;
    expect(await second.run(r.call)).to.equal('from us-west-2');
    expect(r.get('us-east-1').calls, 'the open circuit is skipped').to.equal(before);
    health.forget('s');
    expect(health.stats()).to.deep.equal([]);
    expect(health.activeTarget('s', 'awsSecretsManager')).to.equal(undefined);
  });

  it('stores and providers have breakers of their own', async () => {
    const r = regions(['us-east-1', 'us-west-2']);
    const a = new RegionalClients(r.list, { store: 'a', provider: 'awsSecretsManager', settings, health, onFailover });
    const b = new RegionalClients(r.list, { store: 'b', provider: 'awsSecretsManager', settings, health, onFailover });
    r.get('us-east-1').fail = refused;
    await a.run(r.call);
    await a.run(r.call);
    r.get('us-east-1').fail = undefined;
    expect(await b.run(r.call)).to.equal('from us-east-1');
    expect(await a.run(r.call)).to.equal('from us-west-2');
  });

  it('a cancelled call returns at once, asks no other region, and opens no circuit', async () => {
    const r = regions(['us-east-1', 'us-west-2']);
    const clients = new RegionalClients(r.list, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    const hanging = (client: FakeRegion) => {
      client.calls += 1;
      return new Promise<string>(() => undefined);
    };
    for (let i = 0; i < 3; i++) {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new DeadlineError('sync deadline')), 20);
      const started = Date.now();
      const err = await rejectionOf(clients.run(hanging, undefined, controller.signal));
      expect(err).to.be.instanceOf(DeadlineError);
      expect(Date.now() - started).to.be.below(1000);
    }
    expect(r.get('us-east-1').calls).to.equal(3);
    expect(r.get('us-west-2').calls).to.equal(0);
    expect(health.stats().every((c) => !c.open)).to.equal(true);
    expect(events).to.deep.equal([]);
    // Already aborted: nothing is asked at all.
    const done = new AbortController();
    done.abort();
    expect(await rejectionOf(clients.run(r.call, undefined, done.signal))).to.be.instanceOf(DeadlineError);
    expect(r.get('us-east-1').calls).to.equal(3);
  });

  it('a failing onFailover does not fail the call that was served', async () => {
    const r = regions(['us-east-1', 'us-west-2']);
    r.get('us-east-1').fail = refused;
    const clients = new RegionalClients(r.list, {
      store: 'throws',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover: () => {
        throw new Error('metrics broke');
      },
    });
    expect(await clients.run(r.call)).to.equal('from us-west-2');
  });

  it('defaults: 3 failures, 30 seconds', () => {
    expect(breakerSettings(undefined)).to.deep.equal({ failureThreshold: 3, openSeconds: 30 });
    expect(breakerSettings({ openSeconds: 5 })).to.deep.equal({ failureThreshold: 3, openSeconds: 5 });
  });
});

describe('regional failover: two endpoints in one region', () => {
  const settings = { failureThreshold: 2, openSeconds: 0.2 };
  const VPCE = 'https://user:pw@vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com/some/path';
  let health: RegionHealth;
  let events: FailoverEvent[];
  const onFailover = (e: FailoverEvent) => events.push(e);

  beforeEach(() => {
    health = new RegionHealth();
    events = [];
  });

  /** Fake clients keyed by a name, each at its own target. */
  function targets(list: [string, RegionTarget][]) {
    const fakes = new Map<string, FakeRegion>(list.map(([name]) => [name, { name, calls: 0 }]));
    const clients = list.map(([name, target]) => ({ target, client: fakes.get(name) as FakeRegion }));
    const call = async (client: FakeRegion) => {
      client.calls += 1;
      const err = client.fail?.();
      if (err !== undefined) throw err;
      return `from ${client.name}`;
    };
    return { clients, call, get: (name: string) => fakes.get(name) as FakeRegion };
  }

  it('names endpoints by host only: no scheme, user info or path', () => {
    expect(endpointHost(VPCE)).to.equal('vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com');
    expect(endpointHost('http://127.0.0.1:5001')).to.equal('127.0.0.1:5001');
    expect(targetHost('awsSecretsManager', { region: 'us-east-1' })).to.equal('secretsmanager.us-east-1.amazonaws.com');
    expect(targetHost('awsKms', { region: 'cn-north-1' })).to.equal('kms.cn-north-1.amazonaws.com.cn');
  });

  it('a VPC endpoint primary fails over to the public endpoint of its region, with breakers of their own', async () => {
    const t = targets([
      ['vpce', { region: 'us-east-1', endpoint: VPCE }],
      ['public', { region: 'us-east-1' }],
      ['west', { region: 'us-west-2' }],
    ]);
    const clients = new RegionalClients(t.clients, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    expect(await clients.run(t.call)).to.equal('from vpce');
    expect(clients.servedRegion()).to.deep.equal({
      region: 'us-east-1',
      endpoint: 'vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com',
      primary: true,
    });

    t.get('vpce').fail = refused;
    expect(await clients.run(t.call)).to.equal('from public');
    // Same region, another endpoint: not the primary, and the endpoint tells them apart.
    expect(clients.servedRegion()).to.deep.equal({
      region: 'us-east-1',
      endpoint: 'secretsmanager.us-east-1.amazonaws.com',
      primary: false,
    });
    expect(events).to.deep.equal([
      {
        provider: 'awsSecretsManager',
        store: 's',
        from: 'us-east-1',
        to: 'us-east-1',
        fromEndpoint: 'vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com',
        toPrimary: false,
      },
    ]);
    await clients.run(t.call);
    const stats = health.stats();
    expect(stats.map((s) => [s.region, s.endpoint, s.open])).to.deep.equal([
      ['us-east-1', 'vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com', true],
      ['us-east-1', '', false],
    ]);
    expect(JSON.stringify(stats)).to.not.contain('pw');
    expect(t.get('west').calls).to.equal(0);

    // The public endpoint down too: the other region; its name needs no endpoint.
    t.get('public').fail = refused;
    expect(await clients.run(t.call)).to.equal('from west');
    expect(clients.servedRegion()).to.deep.equal({ region: 'us-west-2', primary: false });

    // Everything down: the error names the endpoints of the shared region.
    t.get('west').fail = refused;
    await sleep(250);
    let caught: unknown;
    await clients.run(t.call).catch((e: unknown) => (caught = e));
    expect(describeAwsFailure(caught)).to.contain(
      'also unavailable: us-east-1 (vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com), us-east-1 (secretsmanager.us-east-1.amazonaws.com)',
    );

    // Back on the VPC endpoint: a move to the primary.
    t.get('vpce').fail = undefined;
    await sleep(250);
    expect(await clients.run(t.call)).to.equal('from vpce');
    expect(events.at(-1)).to.include({ from: 'us-west-2', to: 'us-east-1', toPrimary: true });
  });

  it('a call restricted to the primary region may go to another endpoint there, never to another region', async () => {
    const t = targets([
      ['a', { region: 'us-east-1', endpoint: 'http://a:1' }],
      ['west', { region: 'us-west-2' }],
      ['b', { region: 'us-east-1', endpoint: 'http://b:1' }],
    ]);
    const clients = new RegionalClients(t.clients, { store: 's', provider: 'awsKms', settings, health, onFailover });
    t.get('a').fail = refused;
    expect(await clients.run(t.call, (target) => target.region === 'us-east-1')).to.equal('from b');
    expect(t.get('west').calls).to.equal(0);
    expect(clients.servedRegion()).to.deep.equal({ region: 'us-east-1', endpoint: 'b:1', primary: false });
  });

  it('the active target outlives a client, endpoint included', async () => {
    const t = targets([
      ['a', { region: 'us-east-1', endpoint: 'http://a:1' }],
      ['b', { region: 'us-east-1', endpoint: 'http://b:1' }],
    ]);
    t.get('a').fail = refused;
    const first = new RegionalClients(t.clients, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    await first.run(t.call);
    const second = new RegionalClients(t.clients, {
      store: 's',
      provider: 'awsSecretsManager',
      settings,
      health,
      onFailover,
    });
    expect(second.servedRegion()).to.deep.equal({ region: 'us-east-1', endpoint: 'b:1', primary: false });
  });
});
