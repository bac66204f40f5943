// The IBM Cloud Secrets Manager contract server itself: it must refuse what
// the documented API refuses (no token, an expired or foreign token, an
// unknown secret or version, a duplicate name), page like the API (limit,
// offset, total_count, first/next/last), and answer errors in IBM's shape, or
// the provider tests against it would prove nothing.
import { expect } from 'chai';
import { createHmac, randomUUID } from 'node:crypto';
import { IbmSecretsManagerServer } from '../../../tools/testenv/index.js';

describe('IBM Secrets Manager contract server', () => {
  let server: IbmSecretsManagerServer;
  before(async () => {
    server = await IbmSecretsManagerServer.start({ tokenLifetimeSeconds: 3600 });
    server.contract.addApiKey('key-1', 'iam-ServiceId-1');
  });
  after(async () => server?.stop());

  async function token(
    form: Record<string, string> = { grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey: 'key-1' },
  ) {
    const res = await fetch(`${server.iamEndpoint}/identity/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function call(method: string, path: string, bearer: string | undefined, body?: unknown) {
    const res = await fetch(`${server.serviceUrl}${path}`, {
      method,
      headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }

  it('IAM: an API key gets a bearer token with expires_in and expiration; an unknown key and a bad grant are refused', async () => {
    const ok = await token();
    expect(ok.status).to.equal(200);
    expect(ok.body).to.include({ token_type: 'Bearer', expires_in: 3600 });
    expect(ok.body.expiration).to.be.a('number');
    const bad = await token({ grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey: 'nope' });
    expect([bad.status, bad.body.errorCode]).to.deep.equal([400, 'BXNIM0415E']);
    expect((await token({ grant_type: 'password' })).status).to.equal(400);
  });

  it('IAM: a cr-token is trusted only by the profile whose rule names its subject', async () => {
    server.contract.addTrustedProfile({ id: 'Profile-1', name: 'p1', subject: 'system:serviceaccount:ns:app' });
    const jwt = (sub: string) =>
      `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}.sig`;
    const grant = 'urn:ibm:params:oauth:grant-type:cr-token';
    expect(
      (await token({ grant_type: grant, cr_token: jwt('system:serviceaccount:ns:app'), profile_name: 'p1' })).status,
    ).to.equal(200);
    expect(
      (await token({ grant_type: grant, cr_token: jwt('system:serviceaccount:ns:app'), profile_id: 'Profile-1' }))
        .status,
    ).to.equal(200);
    expect(
      (await token({ grant_type: grant, cr_token: jwt('system:serviceaccount:ns:other'), profile_id: 'Profile-1' }))
        .status,
    ).to.equal(400);
    expect((await token({ grant_type: grant, cr_token: jwt('system:serviceaccount:ns:app') })).status).to.equal(400);
  });

  it('401 without a token, with a foreign one and with an expired one; errors in IBM’s shape', async () => {
    const none = await call('GET', '/api/v2/secrets', undefined);
    expect(none.status).to.equal(401);
    expect(none.body).to.have.keys('errors', 'status_code', 'trace');
    expect(none.body.status_code).to.equal(401);
    expect((await call('GET', '/api/v2/secrets', 'a.b.c')).status).to.equal(401);
    // A token signed with the right key but past its expiry.
    const head = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ iam_id: 'iam-ServiceId-1', sub: 'x', iat: 1, exp: Math.floor(Date.now() / 1000) - 1 }),
    ).toString('base64url')}`;
    const expired = `${head}.${createHmac('sha256', server.signingKey).update(head).digest('base64url')}`;
    const answer = await call('GET', '/api/v2/secrets', expired);
    expect(answer.status).to.equal(401);
    expect(JSON.stringify(answer.body)).to.include('expired');
  });

  it('404 for unknown secrets and versions, 409 for a second secret of one name, type and group', async () => {
    const bearer = String((await token()).body.access_token);
    server.contract.reset();
    expect((await call('GET', `/api/v2/secrets/${randomUUID()}`, bearer)).status).to.equal(404);
    const made = await call('POST', '/api/v2/secrets', bearer, { secret_type: 'arbitrary', name: 'one', payload: 'x' });
    expect(made.status).to.equal(201);
    expect(made.body).to.include({
      name: 'one',
      secret_type: 'arbitrary',
      secret_group_id: 'default',
      versions_total: 1,
    });
    expect((await call('GET', `/api/v2/secrets/${String(made.body.id)}/versions/previous`, bearer)).status).to.equal(
      404,
    );
    const dup = await call('POST', '/api/v2/secrets', bearer, { secret_type: 'arbitrary', name: 'one', payload: 'y' });
    expect(dup.status).to.equal(409);
    // Another type may share the name.
    expect(
      (await call('POST', '/api/v2/secrets', bearer, { secret_type: 'kv', name: 'one', data: { a: 'b' } })).status,
    ).to.equal(201);
    expect((await call('POST', `/api/v2/secrets/${String(made.body.id)}/versions`, bearer, {})).status).to.equal(400);
  });

  it('404 for a secret in an unknown group, 400 without its value, 409 for a second group of one name', async () => {
    const bearer = String((await token()).body.access_token);
    server.contract.reset();
    const orphan = await call('POST', '/api/v2/secrets', bearer, {
      secret_type: 'arbitrary',
      name: 'orphan',
      secret_group_id: randomUUID(),
      payload: 'x',
    });
    expect([orphan.status, (orphan.body.errors as { code: string }[])[0]?.code]).to.deep.equal([404, 'not_found']);
    // A client-valued type without its value is refused.
    expect((await call('POST', '/api/v2/secrets', bearer, { secret_type: 'arbitrary', name: 'bare' })).status).to.equal(
      400,
    );
    expect(
      (await call('POST', '/api/v2/secrets', bearer, { secret_type: 'username_password', name: 'u', username: 'a' }))
        .status,
    ).to.equal(400);
    expect((await call('POST', '/api/v2/secret_groups', bearer, { name: 'team' })).status).to.equal(201);
    expect((await call('POST', '/api/v2/secret_groups', bearer, { name: 'team' })).status).to.equal(409);
  });

  it('PATCH /secrets/{id}/metadata: labels replaced, custom_metadata merged (null removes), no new version', async () => {
    const bearer = String((await token()).body.access_token);
    server.contract.reset();
    const made = await call('POST', '/api/v2/secrets', bearer, {
      secret_type: 'arbitrary',
      name: 'meta',
      payload: 'x',
      labels: ['a', 'b'],
      custom_metadata: { keep: 1, drop: 2 },
    });
    const id = String(made.body.id);
    const patched = await call('PATCH', `/api/v2/secrets/${id}/metadata`, bearer, {
      labels: ['c'],
      custom_metadata: { drop: null, added: 'yes' },
      description: 'now described',
    });
    expect(patched.status).to.equal(200);
    expect(patched.body).to.deep.include({
      labels: ['c'],
      custom_metadata: { keep: 1, added: 'yes' },
      description: 'now described',
      versions_total: 1,
    });
    expect(patched.body).to.not.have.property('payload');
    await call('POST', '/api/v2/secrets', bearer, { secret_type: 'arbitrary', name: 'other', payload: 'y' });
    expect((await call('PATCH', `/api/v2/secrets/${id}/metadata`, bearer, { name: 'other' })).status).to.equal(409);
    expect((await call('PATCH', `/api/v2/secrets/${id}/metadata`, bearer, { labels: 'c' })).status).to.equal(400);
    expect((await call('GET', `/api/v2/secrets/${id}/metadata`, bearer)).status).to.equal(405);
    expect((await call('PATCH', `/api/v2/secrets/${randomUUID()}/metadata`, bearer, {})).status).to.equal(404);
  });

  it('pages with limit and offset, total_count and first/next/last links; limit is bounded', async () => {
    const bearer = String((await token()).body.access_token);
    server.contract.reset();
    for (let i = 0; i < 7; i++)
      await call('POST', '/api/v2/secrets', bearer, { secret_type: 'arbitrary', name: `s-${i}`, payload: String(i) });
    const page = await call('GET', '/api/v2/secrets?limit=3&offset=3&sort=name', bearer);
    expect(page.body).to.include({ limit: 3, offset: 3, total_count: 7 });
    expect((page.body.secrets as { name: string }[]).map((s) => s.name)).to.deep.equal(['s-3', 's-4', 's-5']);
    expect((page.body.secrets as Record<string, unknown>[])[0]).to.not.have.property('payload');
    expect(page.body.next).to.deep.equal({ href: '/api/v2/secrets?limit=3&offset=6&sort=name' });
    expect((page.body.last as { href: string }).href).to.include('offset=6');
    const last = await call('GET', '/api/v2/secrets?limit=3&offset=6', bearer);
    expect(last.body).to.not.have.property('next');
    expect((await call('GET', '/api/v2/secrets?limit=1001', bearer)).status).to.equal(400);
    expect((await call('GET', '/api/v2/secrets?sort=payload', bearer)).status).to.equal(400);
    expect(server.contract.requests.at(-1)).to.include({ method: 'GET', path: '/api/v2/secrets', status: 400 });
  });
});
