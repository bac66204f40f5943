// Threat: "leak through error text". A store endpoint (allowed by the admin,
// or a proxy in front of AWS) answers with a body that the operator must not
// repeat: an HTML error page quoting the request (its signed Authorization
// header, a token), a captive portal answering 200, or an error whose message
// is kilobytes long. What the operator writes about the failure (the
// ManagedSecret's and the store's Ready condition, the Warning Events, its log
// lines, its metrics) carries at most the provider's error code and a short
// message: never the body, never the token, never more than a bounded length.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import type { KubeObject } from '../../../src/kube/client.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  ensureNamespace,
  getSecret,
  listEvents,
  readyOf,
  startOperator,
  type RunningOperator,
} from '../operator.js';
import {
  awsCredsAuth,
  createAwsCreds,
  createStore,
  fakeAwsEndpoint,
  waitForOutcome,
  waitForStoreReady,
  type FakeAnswer,
  type FakeAwsEndpoint,
} from './tenancy-helpers.js';

/**
 * The longest status, Event or log message about one failed read: the store's
 * label (`SecretStore <ns>/<name>`, here about 40 characters), the operation
 * and key (about 60), the AWS error code (at most 64) and the service's own
 * message (at most 160), with their separators. 400 leaves room for all of
 * them and none for a response body.
 */
const MAX_MESSAGE = 400;

describe('security: a store endpoint’s answer never leaks into status, Events, logs or metrics', function () {
  this.timeout(120_000);
  const namespace = uniqueName('sec-errtext');
  const client = () => adminClient(sharedCluster());
  // Looks like a credential and is unique: found anywhere means the body was copied.
  const token = `AKIA${randomBytes(8).toString('hex').toUpperCase()}-tok-${randomBytes(12).toString('hex')}`;
  const htmlPage = (status: string) =>
    `<!DOCTYPE html><html><head><title>${status} ${token}</title></head><body>\n<h1>${status}</h1>\n` +
    `<p>Request headers: Authorization: AWS4-HMAC-SHA256 Credential=${token}</p>\n${'<p>padding</p>\n'.repeat(200)}</body></html>`;
  const cases: Record<string, FakeAnswer> = {
    // A proxy's error page.
    'html-500': { status: 500, body: htmlPage('500 Internal Server Error'), headers: { 'content-type': 'text/html' } },
    // A plain-text gateway error that starts with the token (a parser's message quotes a body's first characters).
    'text-502': {
      status: 502,
      body: `${token} upstream connect error or disconnect/reset before headers`,
      headers: { 'content-type': 'text/plain' },
    },
    // A captive portal: success status, body the SDK cannot read.
    'html-200': { status: 200, body: htmlPage('Sign in'), headers: { 'content-type': 'text/html' } },
    // A well-formed AWS error whose message is long and multi-line, the token past the bound.
    'long-json-400': {
      status: 400,
      body: JSON.stringify({
        __type: 'ValidationException',
        message: `${'the request was refused because '.repeat(300)}\n${token}\n${'more '.repeat(500)}`,
      }),
    },
  };
  const endpoints: Record<string, FakeAwsEndpoint> = {};
  let operator: RunningOperator | undefined;

  before(async () => {
    await ensureNamespace(client(), namespace);
    await createAwsCreds(client(), namespace);
    for (const [name, answer] of Object.entries(cases)) {
      endpoints[name] = await fakeAwsEndpoint(() => answer);
      await createStore(client(), namespace, name, {
        awsSecretsManager: { region: sharedMoto().region, endpoint: endpoints[name]?.url, auth: awsCredsAuth() },
      });
      await createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: { storeRef: { name }, refreshInterval: '1h', data: [{ secretKey: 'v', remoteRef: { key: 'app/db' } }] },
      });
    }
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      // The admin allows these endpoints: the operator talks to them, and must still not repeat them.
      storePolicy: { allowedEndpoints: Object.values(endpoints).map((e) => e.url), localStoreRoot: tmpdir() },
    });
  });

  after(async () => {
    await operator?.stop();
    for (const e of Object.values(endpoints)) await e.close();
  });

  it('the Ready conditions name the failure in a bounded line without the body', async () => {
    const expected: Record<string, RegExp> = {
      'html-500': /HTTP 500/,
      'text-502': /HTTP 502/,
      'html-200': /HTTP 200/,
      'long-json-400': /ValidationException/,
    };
    for (const name of Object.keys(cases)) {
      const ready = readyOf(await waitForOutcome(client(), namespace, name, 60_000));
      const store = await waitForStoreReady(client(), namespace, name, 30_000);
      expect(endpoints[name]?.requests.length, `${name}: requests`).to.be.greaterThan(0);
      for (const [what, condition] of [
        ['ManagedSecret', ready],
        ['store', store],
      ] as const) {
        const message = condition?.message ?? '';
        expect(condition?.status, `${name} ${what}: ${message}`).to.equal('False');
        // Not even its first characters.
        expect(message, `${name} ${what}`).to.not.contain(token.slice(0, 8));
        expect(message, `${name} ${what}`).to.not.match(/<!doctype|<html|<p>|<title|padding|upstream|more more/i);
        expect(message, `${name} ${what}`).to.not.contain('\n');
        expect(message.length, `${name} ${what}: ${message}`).to.be.at.most(MAX_MESSAGE);
        expect(message, `${name} ${what}`).to.match(expected[name] ?? /./);
      }
      expect(await getSecret(client(), namespace, name)).to.equal(undefined);
    }
  });

  it('Events, log lines and metrics do not carry the token or the body either', async () => {
    for (const name of Object.keys(cases)) await waitForOutcome(client(), namespace, name, 60_000);
    const events = (await listEvents(client(), namespace)) as (KubeObject & { message?: string })[];
    expect(events.length, 'Warning Events about the failures').to.be.greaterThan(0);
    for (const e of events) {
      expect(e.message ?? '').to.not.contain(token.slice(0, 8));
      expect((e.message ?? '').length, e.message).to.be.at.most(MAX_MESSAGE);
    }
    const logs = operator?.logs ?? [];
    expect(logs.filter((l) => l.includes('sync failed')).length, 'sync failures logged').to.be.greaterThan(0);
    expect(logs.filter((l) => l.includes(token.slice(0, 8)) || /<!doctype|<html/i.test(l))).to.deep.equal([]);
    // Every field of every line about this namespace (winston joins a `message` field onto the line's own text).
    for (const line of logs.filter((l) => l.includes(namespace))) {
      for (const value of Object.values(JSON.parse(line) as Record<string, unknown>))
        if (typeof value === 'string') expect(value.length, value).to.be.at.most(MAX_MESSAGE + 32);
    }
    const metrics = (await operator?.scrape()) ?? '';
    expect(metrics).to.not.contain(token.slice(0, 8));
    expect(metrics).to.not.match(/<html/i);
  });
});
