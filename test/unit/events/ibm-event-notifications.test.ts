// IBM Cloud Event Notifications deliveries: the parser accepts the documented
// shapes (structured and binary CloudEvents carrying Secrets Manager's payload)
// and nothing else; the keys a notified secret maps to; the token compare; and
// the webhook's answers on the EN path (token, time, replay, shape, size).
import { expect } from 'chai';
import fc from 'fast-check';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  IBM_EN_PATH,
  instanceIdOfCrn,
  instanceIdOfUrl,
  instanceIdsOfStore,
  keysOfNotifiedSecret,
  parseIbmNotification,
  secretIdOf,
  tokenMatches,
  type IbmNotification,
} from '../../../src/events/ibm-event-notifications.js';
import { MAX_BODY_BYTES, startWebhook, type RunningWebhook } from '../../../src/events/webhook.js';
import { createLogger } from '../../../src/observability/logger.js';

const instance = '0b5571f7-21e6-42b7-91c5-3f5ac9793a46';
const secretId = '7e4a8a9e-1f7c-4b5e-9a51-3c2d6f0a1b2c';
const crn = `crn:v1:bluemix:public:secrets-manager:us-south:a/abc:${instance}::`;
const time = '2026-12-05T10:00:00Z';
const noHeaders = () => undefined;

/** The documented payload (docs: "Notification payload details"), as data of a CloudEvent. */
const data = (
  secrets: object[] = [
    { secret_id: `${crn.slice(0, -2)}:secret:${secretId}`, secret_name: 'db', secret_group_id: 'default' },
  ],
) => ({
  event_type: 'secret_rotated',
  secret_type: 'arbitrary',
  secrets,
  source_instance_crn: crn,
  source_instance_api_public_url: `https://${instance}.us-south.secrets-manager.appdomain.cloud/api`,
  source_service: 'SecretsManager',
});
const structured = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    specversion: '1.0',
    id: 'n-1',
    source: crn,
    type: 'com.ibm.cloud.secrets-manager.secret_rotated',
    time,
    data: data(),
    ...over,
  });

describe('IBM Event Notifications: parsing a delivery', () => {
  it('reads a structured CloudEvent: instance, event, secret id from its CRN, name and group', () => {
    expect(parseIbmNotification(structured(), noHeaders)).to.deep.equal({
      deliveryId: `${crn}\nn-1`,
      timeMs: Date.parse(time),
      event: 'secret_rotated',
      instanceId: instance,
      secretType: 'arbitrary',
      secrets: [{ id: secretId, name: 'db', groupId: 'default' }],
    } satisfies IbmNotification);
  });

  it('reads a binary CloudEvent (ce- headers, the body is data), and a type with a sub-type', () => {
    const headers: Record<string, string> = {
      'ce-id': 'n-2',
      'ce-source': crn,
      'ce-type': 'com.ibm.cloud.secrets-manager.secret_about_to_expire:in_10_days',
      'ce-time': time,
    };
    const n = parseIbmNotification(JSON.stringify(data([{ secret_id: secretId }])), (h) => headers[h]);
    expect(n?.event).to.equal('secret_about_to_expire');
    expect(n?.secrets).to.deep.equal([{ id: secretId }]);
    expect(n?.deliveryId).to.equal(`${crn}\nn-2`);
  });

  it('refuses what is not a Secrets Manager event with an id, a time, an instance and secret ids', () => {
    const bad = [
      'not json',
      '[]',
      structured({ id: undefined }),
      structured({ time: undefined }),
      structured({ time: 'yesterday' }),
      structured({ type: 'com.ibm.cloud.other.secret_rotated' }),
      structured({
        source: 'src',
        data: { ...data(), source_instance_crn: undefined, source_instance_api_public_url: undefined },
      }),
      structured({ data: { ...data([{ secret_name: 'no id' }]) } }),
      structured({ data: { ...data([{ secret_id: 'not-a-uuid' }]) } }),
      structured({ data: { ...data(Array.from({ length: 1001 }, () => ({ secret_id: secretId }))) } }),
      structured({ data: { ...data(), secret_type: 'Bad Type!' } }),
      structured({ data: { ...data(), secrets: 'db' } }),
    ];
    for (const body of bad) expect(parseIbmNotification(body, noHeaders), body.slice(0, 80)).to.equal(undefined);
  });

  it('never throws on any JSON (property)', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        parseIbmNotification(text, noHeaders);
      }),
    );
  });

  it('tells instances from CRNs and service URLs, secret ids from ids and CRNs', () => {
    expect(instanceIdOfCrn(crn)).to.equal(instance);
    expect(instanceIdOfCrn(`crn:v1:bluemix:public:kms:us-south:a/abc:${instance}::`)).to.equal(undefined);
    expect(instanceIdOfUrl(`https://${instance}.private.eu-de.secrets-manager.appdomain.cloud`)).to.equal(instance);
    expect(instanceIdOfUrl('http://127.0.0.1:8080')).to.equal(undefined);
    expect(secretIdOf(secretId.toUpperCase())).to.equal(secretId);
    expect(secretIdOf(`${crn.slice(0, -2)}:secret:${secretId}`)).to.equal(secretId);
    expect(secretIdOf('crn:v1:x:secret:nope')).to.equal(undefined);
    expect(
      instanceIdsOfStore({
        serviceUrl: `https://${instance}.us-south.secrets-manager.appdomain.cloud`,
        failover: [{ instanceId: secretId.toUpperCase(), region: 'eu-de' }, { serviceUrl: 'http://proxy:1' }],
      }),
    ).to.deep.equal([instance, secretId]);
  });
});

describe('IBM Event Notifications: keys of a notified secret', () => {
  it('the id, the name (for finds), <group id>/<type>/<name>, and known keys of that type and name in any group', () => {
    const keys = keysOfNotifiedSecret({ id: secretId, name: 'db', groupId: 'g-1' }, 'kv', [
      'team-a/kv/db',
      'team-a/arbitrary/db',
      'x/team-a/kv/db',
      'team-a/kv/db2',
      secretId.toUpperCase(),
    ]);
    expect(keys.sort()).to.deep.equal(['db', 'g-1/kv/db', secretId, secretId.toUpperCase(), 'team-a/kv/db'].sort());
  });

  it('without a name: the id alone', () => {
    expect(keysOfNotifiedSecret({ id: secretId }, 'kv', ['default/kv/db'])).to.deep.equal([secretId]);
  });
});

describe('IBM Event Notifications: the token', () => {
  const token = Buffer.from('t'.repeat(40));
  it('accepts the token bare or as a bearer token, nothing else', () => {
    expect(tokenMatches(token, `Bearer ${'t'.repeat(40)}`)).to.equal(true);
    expect(tokenMatches(token, 't'.repeat(40))).to.equal(true);
    for (const h of [undefined, '', 'Bearer ', `Bearer ${'t'.repeat(39)}`, `bearer ${'t'.repeat(40)}`, 't'.repeat(41)])
      expect(tokenMatches(token, h), String(h)).to.equal(false);
  });
});

describe('IBM Event Notifications: the webhook path', () => {
  const token = randomBytes(32).toString('hex');
  let hook: RunningWebhook | undefined;
  const seen: IbmNotification[] = [];
  let now = Date.parse(time);
  let tokenNow: Buffer | undefined = Buffer.from(token);

  const start = async (withIbm = true) => {
    hook = await startWebhook({
      address: '127.0.0.1:0',
      key: () => randomBytes(32),
      notify: () => 0,
      active: () => true,
      log: createLogger('error'),
      perSourceRate: 1000,
      perSourceBurst: 1000,
      now: () => now,
      ...(withIbm
        ? {
            ibmEventNotifications: {
              token: () => tokenNow,
              notify: (n: IbmNotification) => {
                seen.push(n);
                return 1;
              },
            },
          }
        : {}),
    });
  };
  const post = async (body: string, auth: string | null = `Bearer ${token}`) => {
    const res = await fetch(`http://127.0.0.1:${hook?.port}${IBM_EN_PATH}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/cloudevents+json',
        ...(auth !== null ? { authorization: auth } : {}),
      },
      body,
    });
    return [res.status, await res.text()] as const;
  };

  afterEach(async () => {
    await hook?.close();
    hook = undefined;
    seen.length = 0;
    now = Date.parse(time);
    tokenNow = Buffer.from(token);
  });

  it('is 404 when not configured', async () => {
    await start(false);
    expect(await post(structured())).to.deep.equal([404, '']);
  });

  it('accepts a fresh delivery once; a re-delivery is 204 with no second notify', async () => {
    await start();
    expect(await post(structured())).to.deep.equal([204, '']);
    expect(await post(structured())).to.deep.equal([204, '']);
    expect(seen).to.have.length(1);
    expect(await post(structured({ id: randomUUID() }))).to.deep.equal([204, '']);
    expect(seen).to.have.length(2);
  });

  it('refuses a wrong or missing token (401), a time outside 10 minutes (401), a bad shape (400), a big body (413), no token Secret (503)', async () => {
    await start();
    expect((await post(structured(), 'Bearer nope'))[0]).to.equal(401);
    expect((await post(structured(), null))[0]).to.equal(401);
    now = Date.parse(time) + 11 * 60_000;
    expect((await post(structured()))[0]).to.equal(401);
    now = Date.parse(time) - 11 * 60_000;
    expect((await post(structured()))[0]).to.equal(401);
    now = Date.parse(time) + 9 * 60_000;
    expect((await post('{"specversion":"1.0"}'))[0]).to.equal(400);
    // Another source's event (EN's destination test) is accepted and does nothing.
    expect((await post(structured({ type: 'com.ibm.eventnotifications.test', data: {} })))[0]).to.equal(204);
    expect((await post(structured({ type: 'com.ibm.eventnotifications.test', time: 'soon' })))[0]).to.equal(400);
    expect((await post(structured({ pad: 'x'.repeat(MAX_BODY_BYTES) })))[0]).to.equal(413);
    tokenNow = undefined;
    expect((await post(structured()))[0]).to.equal(503);
    expect(seen).to.have.length(0);
  });
});
