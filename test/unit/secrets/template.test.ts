import { expect } from 'chai';
import fc from 'fast-check';
import Mustache from 'mustache';
import { LimitError, SecretsyncError } from '../../../src/api/errors.js';
import { DEFAULT_LIMITS } from '../../../src/api/limits.js';
import { MAX_WHITESPACE_RUN, renderTemplates, TemplateError } from '../../../src/secrets/template.js';

const SECRET = 'p@ss<w0rd>&"quoted"';
const LIMITS = { maxTemplateBytes: DEFAULT_LIMITS.maxTemplateBytes, maxSecretBytes: DEFAULT_LIMITS.maxSecretBytes };

function errorOf<T extends Error>(cls: new (...args: never[]) => T, fn: () => unknown): T {
  try {
    fn();
  } catch (err) {
    if (err instanceof cls) return err;
    throw new Error(`expected a ${cls.name}, got ${String(err)}`);
  }
  throw new Error(`expected a ${cls.name}, but none was thrown`);
}

const templateErrorOf = (fn: () => unknown) => errorOf(TemplateError, fn);
const limitErrorOf = (fn: () => unknown) => errorOf(LimitError, fn);

describe('renderTemplates', () => {
  it('renders every template over the values', () => {
    const out = renderTemplates(
      { url: 'postgres://{{ username }}:{{ password }}@db/app', user: '{{username}}' },
      { username: 'app', password: 'pw' },
      LIMITS,
    );
    expect(out).to.deep.equal({ url: 'postgres://app:pw@db/app', user: 'app' });
  });

  it('inserts values as they are, without HTML escaping', () => {
    const out = renderTemplates(
      { a: '{{password}}', b: '{{{password}}}', c: '{{&password}}' },
      { password: SECRET },
      LIMITS,
    );
    expect(out).to.deep.equal({ a: SECRET, b: SECRET, c: SECRET });
  });

  it('renders a value whose key contains a dot, as Secret keys often do (tls.crt)', () => {
    expect(
      renderTemplates({ bundle: '{{tls.crt}}\n{{ca.crt}}' }, { 'tls.crt': 'CERT', 'ca.crt': 'CA' }, LIMITS),
    ).to.deep.equal({ bundle: 'CERT\nCA' });
  });

  it('reads a dotted name as a whole key only, never as a path into a value', () => {
    // mustache alone renders {{password.length}} as the length of the value.
    const err = templateErrorOf(() => renderTemplates({ a: '{{password.length}}' }, { password: 'pw' }, LIMITS));
    expect(err.message).to.include('"password.length"');
  });

  it('supports sections and inverted sections over present values', () => {
    const templates = {
      a: '{{#password}}has:{{password}}{{/password}}{{^empty}};empty{{/empty}}{{#empty}}never{{/empty}}{{^password}}never{{/password}}',
    };
    expect(renderTemplates(templates, { password: 'pw', empty: '' }, LIMITS)).to.deep.equal({ a: 'has:pw;empty' });
  });

  it('renders {{.}} in a section as the section value, and refuses it outside one', () => {
    expect(renderTemplates({ a: '{{#user}}<{{.}}>{{/user}}' }, { user: 'app' }, LIMITS)).to.deep.equal({
      a: '<app>',
    });
    expect(templateErrorOf(() => renderTemplates({ a: '{{.}}' }, { user: 'app' }, LIMITS)).message).to.include(
      'outside a section',
    );
  });

  it('honours comments and delimiter changes as mustache does', () => {
    expect(
      renderTemplates({ a: '{{! a comment }}{{=<% %>=}}<%user%>:{{user}}' }, { user: 'app' }, LIMITS),
    ).to.deep.equal({ a: 'app:{{user}}' });
  });

  it('renders a key named __proto__ as an own key, not as the prototype', () => {
    const out = renderTemplates(JSON.parse('{"__proto__": "{{user}}"}') as Record<string, string>, { user: 'a' });
    expect(Object.keys(out)).to.deep.equal(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).to.equal('a');
  });

  it('returns no keys for no templates', () => {
    expect(renderTemplates({}, { a: 'b' }, LIMITS)).to.deep.equal({});
  });

  describe('is strict', () => {
    for (const [what, template, tag] of [
      ['a reference', 'x{{missing}}y', '{{missing}}'],
      ['a triple-mustache reference', 'x{{{missing}}}y', '{{&missing}}'],
      ['a section', '{{#missing}}never{{/missing}}', '{{#missing}}'],
      ['an inverted section', '{{^missing}}absent{{/missing}}', '{{^missing}}'],
      ['a reference inside a section', '{{#user}}{{missing}}{{/user}}', '{{missing}}'],
    ] as const) {
      it(`${what} over a missing value is a TemplateError naming the target key and the name, never a value`, () => {
        const err = templateErrorOf(() =>
          renderTemplates({ fine: '{{user}}', 'config.yaml': template }, { user: 'app', password: SECRET }, LIMITS),
        );
        expect(err).to.be.instanceOf(SecretsyncError);
        expect(err.reason).to.equal('InvalidTemplate');
        expect(err.retry).to.equal('terminal');
        expect(err.message).to.include('template for key "config.yaml"');
        expect(err.message).to.include('"missing"');
        expect(err.message).to.include(tag);
        expect(err.message).to.not.include(SECRET);
      });
    }

    it('names like Object.prototype members are missing values, not inherited ones', () => {
      for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty'])
        expect(
          templateErrorOf(() => renderTemplates({ a: `{{${name}}}` }, { user: 'app' }, LIMITS)).message,
        ).to.include(`"${name}"`);
    });

    it('a partial is a TemplateError', () => {
      const err = templateErrorOf(() => renderTemplates({ a: '[{{> password}}]' }, { password: 'pw' }, LIMITS));
      expect(err.message).to.include('partial');
    });
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
      expect(err.reason).to.equal('InvalidTemplate');
      expect(err.message).to.include('template for key "config.yaml" is invalid');
      expect(err.message).to.not.include(SECRET);
      expect(err.message).to.not.include('app');
      expect(err.message).to.not.include('\n');
    });
  }

  describe('bounds', () => {
    it('refuses template sources over maxTemplateBytes, counted in UTF-8 bytes (terminal, TemplateTooLarge)', () => {
      // 30 characters, 60 bytes: within a limit of 50 characters, over one of 50 bytes.
      const templates = { a: 'é'.repeat(20), b: 'ü'.repeat(10) };
      const err = limitErrorOf(() => renderTemplates(templates, {}, { ...LIMITS, maxTemplateBytes: 50 }));
      expect(err.reason).to.equal('TemplateTooLarge');
      expect(err.retry).to.equal('terminal');
      expect(err.message).to.include('60 bytes');
      expect(renderTemplates(templates, {}, { ...LIMITS, maxTemplateBytes: 60 })).to.have.keys('a', 'b');
    });

    it('refuses output over maxSecretBytes across all keys, keys counted (transient, SecretTooLarge)', () => {
      const values = { v: 'x'.repeat(40) };
      // Keys "a" and "b" (1 byte each) and 2 × 40 bytes of values: 82 bytes.
      expect(renderTemplates({ a: '{{v}}', b: '{{v}}' }, values, { ...LIMITS, maxSecretBytes: 82 })).to.have.keys(
        'a',
        'b',
      );
      const err = limitErrorOf(() =>
        renderTemplates({ a: '{{v}}', b: '{{v}}' }, values, { ...LIMITS, maxSecretBytes: 81 }),
      );
      expect(err.reason).to.equal('SecretTooLarge');
      expect(err.retry).to.equal('transient');
      expect(err.message).to.include('template for key "b"');
      expect(err.message).to.not.include('xxxx');
    });

    it('stops a template that repeats a 100 KiB value 10,000 times fast, without building the output', function () {
      this.timeout(10_000);
      const big = 'x'.repeat(100 * 1024);
      // Within the default 64 KiB of template source: 5 bytes per reference.
      const template = `{{#big}}${'{{b}}'.repeat(10_000)}{{/big}}`;
      expect(Buffer.byteLength(template)).to.be.lessThan(DEFAULT_LIMITS.maxTemplateBytes);
      // Unbounded, this is 1,000 MiB of output: mustache itself would build it (seconds, a gigabyte of heap).
      global.gc?.();
      const before = process.memoryUsage().heapUsed;
      const started = performance.now();
      const err = limitErrorOf(() => renderTemplates({ out: template }, { big, b: big }, DEFAULT_LIMITS));
      const elapsed = performance.now() - started;
      const grown = process.memoryUsage().heapUsed - before;
      expect(err.reason).to.equal('SecretTooLarge');
      expect(elapsed, `${elapsed.toFixed(0)} ms`).to.be.lessThan(500);
      // At most the bound (1 MiB) held in pieces, plus parse tokens: far from the 1 GB it would take.
      expect(grown, `${grown} bytes`).to.be.lessThan(64 * 1024 * 1024);
    });

    it(`refuses a run of more than ${MAX_WHITESPACE_RUN} whitespace characters (mustache's parser is quadratic on them)`, () => {
      // Measured on mustache alone: '{{a' and 64,000 spaces take 4.5 s to fail to parse.
      const started = performance.now();
      const err = templateErrorOf(() => renderTemplates({ a: `{{a${' '.repeat(64_000)}` }, { a: 'v' }));
      expect(performance.now() - started).to.be.lessThan(200);
      expect(err.message).to.include('64000 whitespace characters in a row');
      const fine = `{{a}}${' '.repeat(MAX_WHITESPACE_RUN)}{{a}}`;
      expect(renderTemplates({ a: fine }, { a: 'v' })).to.deep.equal({ a: `v${' '.repeat(MAX_WHITESPACE_RUN)}v` });
    });

    it('parses the worst template within the bounds quickly (unclosed tags over many maximal whitespace runs)', () => {
      for (const open of ['{{a', '{{{a', '{{=']) {
        const template = (open + (' '.repeat(MAX_WHITESPACE_RUN) + 'x').repeat(1000)).slice(
          0,
          DEFAULT_LIMITS.maxTemplateBytes,
        );
        const started = performance.now();
        templateErrorOf(() => renderTemplates({ a: template }, { a: 'v' }));
        const elapsed = performance.now() - started;
        expect(elapsed, `${open}: ${elapsed.toFixed(0)} ms`).to.be.lessThan(1_000);
      }
    });

    it('renders deeply nested sections without growing the call stack', () => {
      const depth = 9_000;
      const template = '{{#a}}'.repeat(depth) + '{{a}}' + '{{/a}}'.repeat(depth);
      expect(renderTemplates({ k: template }, { a: 'v' }, { ...LIMITS, maxTemplateBytes: 1 << 20 })).to.deep.equal({
        k: 'v',
      });
    });
  });

  describe('properties (fast-check, fixed seed)', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,8}$/);
    const value = fc.string({ maxLength: 20 });
    const text = fc.string({ maxLength: 10 }).filter((s) => !s.includes('{{') && !s.includes('}}') && !/[{}]$/.test(s));

    it('agrees with mustache on templates of text, references and sections over present values', () => {
      const parts = (names: string[]) => {
        const leaf = fc.oneof(
          text,
          fc.constantFrom(...names).map((n) => `{{${n}}}`),
          fc.constantFrom(...names).map((n) => `{{{${n}}}}`),
        );
        return fc.array(
          fc.oneof(
            leaf,
            fc
              .tuple(fc.constantFrom('#', '^'), fc.constantFrom(...names), fc.array(leaf, { maxLength: 3 }))
              .map(([t, n, body]) => `{{${t}${n}}}${body.join('')}{{/${n}}}`),
          ),
          { maxLength: 6 },
        );
      };
      fc.assert(
        fc.property(
          fc
            .dictionary(name, value, { minKeys: 1, maxKeys: 5 })
            .chain((values) => fc.tuple(fc.constant(values), parts(Object.keys(values)))),
          ([values, template]) => {
            const source = template.join('');
            // The names have no dots that could resolve as paths and values are strings, so mustache is the oracle.
            const undotted = Object.keys(values).every((k) => !k.includes('.'));
            const ours = renderTemplates({ k: source }, values, LIMITS).k;
            if (undotted) {
              const theirs = Mustache.render(source, values, {}, { escape: (s: string) => s });
              expect(ours).to.equal(theirs);
            }
            expect(ours).to.be.a('string');
          },
        ),
        { seed: 20_261_204, numRuns: 300 },
      );
    });

    it('never returns more than maxSecretBytes, and fails only with LimitError SecretTooLarge when it would', () => {
      fc.assert(
        fc.property(
          fc.string({ maxLength: 50 }),
          fc.integer({ min: 0, max: 40 }),
          fc.integer({ min: 1, max: 400 }),
          (v, times, max) => {
            const templates = { k: '{{v}}'.repeat(times) };
            const limits = { ...LIMITS, maxSecretBytes: max };
            const needed = 1 + Buffer.byteLength(v) * times;
            try {
              const out = renderTemplates(templates, { v }, limits);
              expect(needed).to.be.at.most(max);
              expect(out.k).to.equal(v.repeat(times));
            } catch (err) {
              expect(err).to.be.instanceOf(LimitError);
              expect((err as LimitError).reason).to.equal('SecretTooLarge');
              expect(needed).to.be.greaterThan(max);
            }
          },
        ),
        { seed: 4_242, numRuns: 300 },
      );
    });

    it('throws only TemplateError or LimitError on arbitrary input, never anything else', () => {
      const soup = fc
        .array(fc.constantFrom('{{', '}}', '{', '}', '#', '^', '/', '>', '&', '=', '!', '.', 'a', ' ', '\n', 'b'), {
          maxLength: 40,
        })
        .map((a) => a.join(''));
      fc.assert(
        fc.property(soup, (template) => {
          try {
            renderTemplates({ k: template }, { a: 'A', b: '' }, LIMITS);
          } catch (err) {
            expect(err instanceof TemplateError || err instanceof LimitError, String(err)).to.equal(true);
          }
        }),
        { seed: 7, numRuns: 500 },
      );
    });
  });
});
