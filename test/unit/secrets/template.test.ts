import { expect } from 'chai';
import { renderTemplates, TemplateError } from '../../../src/secrets/template.js';

const SECRET = 'p@ss<w0rd>&"quoted"';

function templateErrorOf(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TemplateError) return err;
    throw new Error(`expected a TemplateError, got ${String(err)}`);
  }
  throw new Error('expected a TemplateError, but none was thrown');
}

describe('renderTemplates', () => {
  it('renders every template over the values', () => {
    const out = renderTemplates(
      { url: 'postgres://{{ username }}:{{ password }}@db/app', user: '{{username}}' },
      { username: 'app', password: 'pw' },
    );
    expect(out).to.deep.equal({ url: 'postgres://app:pw@db/app', user: 'app' });
  });

  it('inserts values as they are, without HTML escaping', () => {
    const out = renderTemplates({ a: '{{password}}', b: '{{{password}}}', c: '{{&password}}' }, { password: SECRET });
    expect(out).to.deep.equal({ a: SECRET, b: SECRET, c: SECRET });
    expect(out.a).to.not.include('&lt;');
    expect(out.a).to.not.include('&amp;');
    expect(out.a).to.not.include('&quot;');
  });

  it('renders a missing value as empty', () => {
    expect(renderTemplates({ a: 'x{{missing}}y', b: '{{#missing}}never{{/missing}}' }, {})).to.deep.equal({
      a: 'xy',
      b: '',
    });
  });

  it('renders a missing value named like an Object.prototype member as empty', () => {
    // The values are a plain object: mustache must not find inherited members on it.
    expect(
      renderTemplates({ a: '[{{constructor}}][{{toString}}][{{#valueOf}}x{{/valueOf}}]' }, { username: 'app' }),
    ).to.deep.equal({ a: '[][][]' });
  });

  it('renders a value whose key contains a dot, as Secret keys often do (tls.crt)', () => {
    expect(renderTemplates({ bundle: '{{tls.crt}}\n{{ca.crt}}' }, { 'tls.crt': 'CERT', 'ca.crt': 'CA' })).to.deep.equal(
      { bundle: 'CERT\nCA' },
    );
  });

  it('supports sections and inverted sections over the values', () => {
    const templates = { a: '{{#password}}has:{{password}}{{/password}}{{^other}};no other{{/other}}' };
    expect(renderTemplates(templates, { password: 'pw' })).to.deep.equal({ a: 'has:pw;no other' });
  });

  it('does not render partials', () => {
    expect(renderTemplates({ a: '[{{> password}}]' }, { password: 'pw' })).to.deep.equal({ a: '[]' });
  });

  it('returns no keys for no templates', () => {
    expect(renderTemplates({}, { a: 'b' })).to.deep.equal({});
  });

  for (const [what, template] of [
    ['an unclosed section', 'user={{#password}}{{password}}'],
    ['an unclosed tag', 'user={{password'],
    ['an unopened section', 'user={{/password}}'],
    ['mismatched sections', '{{#password}}x{{/username}}'],
  ] as const) {
    it(`throws a TemplateError naming the target key, never a value, for ${what}`, () => {
      const err = templateErrorOf(() =>
        renderTemplates({ fine: '{{username}}', 'config.yaml': template }, { username: 'app', password: SECRET }),
      );
      expect(err.name).to.equal('TemplateError');
      expect(err).to.be.instanceOf(Error);
      expect(err.message).to.include('template for key "config.yaml" is invalid');
      expect(err.message).to.not.include(SECRET);
      expect(err.message).to.not.include('app');
      expect(err.message).to.not.include('\n');
    });
  }
});
