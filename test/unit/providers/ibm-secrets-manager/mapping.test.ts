// The ibmSecretsManager provider's own mapping: keys, each secret type's
// properties, the body of a new version, IBM's answers as operator errors, and
// the operation names metrics see. No server: these are pure functions.
import { expect } from 'chai';
import { SpecError } from '../../../../src/api/errors.js';
import {
  IbmUnauthorizedError,
  IbmUnavailableError,
  ibmErrorText,
  mapStatus,
  retryAfter,
} from '../../../../src/providers/ibm-secrets-manager/http.js';
import { instanceUrl, operationName, versionBody } from '../../../../src/providers/ibm-secrets-manager/index.js';
import { parseKey, secretProperties, wholeValue } from '../../../../src/providers/ibm-secrets-manager/values.js';
import { KeyNotFoundError, ProviderConfigError, ProviderError } from '../../../../src/providers/provider.js';

describe('ibmSecretsManager mapping', () => {
  it('a key is a secret id or <group>/<type>/<name>; anything else is the spec’s mistake', () => {
    expect(parseKey('0B5571F7-21E6-42B7-91C5-3F5AC9793A46')).to.deep.equal({
      id: '0b5571f7-21e6-42b7-91c5-3f5ac9793a46',
    });
    expect(parseKey('payments/kv/app')).to.deep.equal({ group: 'payments', type: 'kv', name: 'app' });
    expect(() => parseKey('payments/app')).to.throw(SpecError, /neither a secret id/);
    expect(() => parseKey('payments/password/app')).to.throw(SpecError, /not a secret type/);
    expect(() => parseKey('a//b')).to.throw(SpecError);
  });

  it('maps each type to properties; certificates also give tls.crt, tls.key and ca.crt', () => {
    expect(secretProperties({ secret_type: 'arbitrary', payload: 'p' })).to.deep.equal({ payload: 'p' });
    expect(secretProperties({ secret_type: 'kv', data: { a: 'x', n: 1, o: { b: true } } })).to.deep.equal({
      a: 'x',
      n: '1',
      o: '{"b":true}',
    });
    const priv = secretProperties({
      secret_type: 'private_cert',
      certificate: 'C',
      private_key: 'K',
      issuing_ca: 'I',
      ca_chain: ['I', 'R'],
    });
    expect(priv).to.include({ 'tls.crt': 'C', 'tls.key': 'K', 'ca.crt': 'I\nR', ca_chain: 'I\nR', issuing_ca: 'I' });
    const imported = secretProperties({ secret_type: 'imported_cert', certificate: 'C', private_key: 'K' });
    expect(imported).to.not.have.property('ca.crt');
    expect(secretProperties({ secret_type: 'service_credentials', credentials: { apikey: 'k' } })).to.deep.equal({
      apikey: 'k',
    });
    expect(secretProperties({ secret_type: 'something_new', payload: 'p' })).to.deep.equal({});
  });

  it('a whole value: the payload, the API key, or the type’s own fields as JSON', () => {
    expect(wholeValue('arbitrary', { payload: 'p' })).to.equal('p');
    expect(wholeValue('iam_credentials', { api_key: 'k', service_id: 's' })).to.equal('k');
    expect(JSON.parse(wholeValue('imported_cert', { certificate: 'C', 'tls.crt': 'C' }))).to.deep.equal({
      certificate: 'C',
    });
  });

  it('builds new versions: a payload, a property laid over a JSON payload, a password, kv data', () => {
    expect(versionBody('arbitrary', { key: 'k' }, 'v', {})).to.deep.equal({ payload: 'v' });
    expect(versionBody('arbitrary', { key: 'k', property: 'b' }, '2', { payload: '{"a":"1"}' })).to.deep.equal({
      payload: '{"a":"1","b":"2"}',
    });
    expect(() => versionBody('arbitrary', { key: 'k', property: 'b' }, '2', { payload: 'text' })).to.throw(
      ProviderError,
      /JSON object/,
    );
    expect(versionBody('username_password', { key: 'k', property: 'password' }, 'p', { username: 'u' })).to.deep.equal({
      password: 'p',
    });
    expect(() =>
      versionBody('username_password', { key: 'k' }, { username: 'other', password: 'p' }, { username: 'u' }),
    ).to.throw(ProviderError, /password only/);
    expect(versionBody('kv', { key: 'k' }, { b: '2' }, { data: { a: '1' } })).to.deep.equal({
      data: { a: '1', b: '2' },
    });
    expect(() => versionBody('kv', { key: 'k' }, 'whole', {})).to.throw(ProviderError, /not a whole value/);
    expect(() => versionBody('public_cert', { key: 'k' }, 'x', {})).to.throw(ProviderError);
  });

  it('maps IBM’s answers: 401 AuthenticationFailed and 403 PermissionDenied (configuration, never a deletion), 404 not found, 429 and 5xx unavailable', () => {
    const req = { what: 'GET secret "k"', key: 'k' };
    const body = { errors: [{ code: 'not_found', message: 'Secret not found' }], status_code: 404, trace: 't' };
    const notFound = mapStatus(req, 404, body);
    expect(notFound).to.be.instanceOf(KeyNotFoundError);
    expect(notFound.message).to.equal('GET secret "k": HTTP 404 (not_found: Secret not found)');
    const unauthorized = mapStatus(req, 401, undefined);
    expect(unauthorized).to.be.instanceOf(IbmUnauthorizedError);
    expect(unauthorized).to.be.instanceOf(ProviderConfigError).and.not.instanceOf(KeyNotFoundError);
    expect((unauthorized as ProviderConfigError).reason).to.equal('AuthenticationFailed');
    const forbidden = mapStatus(req, 403, undefined) as ProviderConfigError;
    expect(forbidden).to.be.instanceOf(ProviderConfigError).and.not.instanceOf(KeyNotFoundError);
    expect([forbidden.reason, forbidden.clientUnusable]).to.deep.equal(['PermissionDenied', false]);
    expect(mapStatus(req, 429, undefined, 2000))
      .to.be.instanceOf(IbmUnavailableError)
      .with.property('retryAfterMs', 2000);
    expect(mapStatus(req, 503, undefined)).to.be.instanceOf(IbmUnavailableError);
    const conflict = mapStatus(req, 409, undefined);
    expect(conflict).to.be.instanceOf(ProviderError).and.not.instanceOf(IbmUnavailableError);
    expect(ibmErrorText({ errorCode: 'BXNIM0415E', errorMessage: 'Provided API key could not be found.' })).to.equal(
      'BXNIM0415E: Provided API key could not be found.',
    );
  });

  it('reads Retry-After in seconds or as a date, and doubles from 0.5 s without one', () => {
    expect(retryAfter(new Headers({ 'retry-after': '3' }), 1)).to.equal(3000);
    expect(retryAfter(new Headers(), 1)).to.equal(500);
    expect(retryAfter(new Headers(), 3)).to.equal(2000);
    const inTwo = new Date(Date.now() + 2000).toUTCString();
    expect(retryAfter(new Headers({ 'retry-after': inTwo }), 1)).to.be.within(0, 2000);
  });

  it('finds the service URL of an instance id and region (public or private), and a URL’s region', () => {
    expect(instanceUrl({ instanceId: '0b5571f7-21e6-42b7-91c5-3f5ac9793a46', region: 'us-south' }, 'f')).to.deep.equal({
      url: 'https://0b5571f7-21e6-42b7-91c5-3f5ac9793a46.us-south.secrets-manager.appdomain.cloud',
      region: 'us-south',
    });
    expect(
      instanceUrl({ instanceId: '0b5571f7-21e6-42b7-91c5-3f5ac9793a46', region: 'eu-de', endpointType: 'private' }, 'f')
        .url,
    ).to.equal('https://0b5571f7-21e6-42b7-91c5-3f5ac9793a46.private.eu-de.secrets-manager.appdomain.cloud');
    expect(
      instanceUrl(
        { serviceUrl: 'https://0b5571f7-21e6-42b7-91c5-3f5ac9793a46.private.jp-tok.secrets-manager.appdomain.cloud/' },
        'f',
      ),
    ).to.deep.equal({
      url: 'https://0b5571f7-21e6-42b7-91c5-3f5ac9793a46.private.jp-tok.secrets-manager.appdomain.cloud',
      region: 'jp-tok',
    });
    expect(instanceUrl({ serviceUrl: 'http://127.0.0.1:8080' }, 'f').region).to.equal('127.0.0.1:8080');
    expect(() => instanceUrl({ region: 'us-south' }, 'f')).to.throw(ProviderConfigError);
  });

  it('names operations as IBM’s SDK does, without ids or names (one metrics series per operation)', () => {
    expect(operationName('GET', '/api/v2/secrets/0b5571f7-21e6-42b7-91c5-3f5ac9793a46')).to.equal('GetSecret');
    expect(operationName('GET', '/api/v2/secret_groups/g/secret_types/kv/secrets/n')).to.equal('GetSecretByNameType');
    expect(operationName('GET', '/api/v2/secrets?limit=1')).to.equal('ListSecrets');
    expect(operationName('POST', '/api/v2/secrets')).to.equal('CreateSecret');
    expect(operationName('GET', '/api/v2/secrets/x/versions/previous')).to.equal('GetSecretVersion');
    expect(operationName('GET', '/api/v2/secrets/x/versions')).to.equal('ListSecretVersions');
    expect(operationName('POST', '/api/v2/secrets/x/versions')).to.equal('CreateSecretVersion');
  });
});
