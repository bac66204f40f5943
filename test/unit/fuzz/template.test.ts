// Fuzzing the template renderer (src/secrets/template.ts) beyond the
// properties in test/unit/secrets/template.test.ts (mustache as the oracle on
// well-formed templates, the output bound for repeated references, a small
// alphabet of tag characters): here any text at all, target keys and value names
// included, must end in output or TemplateError/LimitError whose one-line message
// holds no value; the output never passes maxSecretBytes; and templates built
// to the size bound from the pieces mustache's parser finds hardest (unclosed
// tags, whitespace runs, delimiter changes, deep sections) render or fail in
// time linear in their size.
import { expect } from 'chai';
import fc from 'fast-check';
import { LimitError } from '../../../src/api/errors.js';
import { DEFAULT_LIMITS } from '../../../src/api/limits.js';
import { MAX_WHITESPACE_RUN, TemplateError, renderTemplates } from '../../../src/secrets/template.js';
import { assertTypedError, runs, thrownBy, timeoutFor } from './fuzz.js';

const LIMITS = { maxTemplateBytes: DEFAULT_LIMITS.maxTemplateBytes, maxSecretBytes: DEFAULT_LIMITS.maxSecretBytes };
const TEMPLATE_ERRORS = [TemplateError, LimitError] as const;

/** Values that could not appear in a message by accident: long, and marked. */
const value = fc.string({ minLength: 0, maxLength: 30 }).map((s) => `VAL<${s}>ue-${s.length}`);

/** Tag-heavy text: the pieces of mustache syntax among arbitrary characters. */
const piece = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '{{',
      '}}',
      '{{{',
      '}}}',
      '{{#',
      '{{^',
      '{{/',
      '{{&',
      '{{!',
      '{{>',
      '{{=',
      '=}}',
      '{{.}}',
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom('a', 'b', 'c.d', '__proto__', 'constructor', ' ', '\n', '\t', '\u00a0', '\u2028'),
  },
  { weight: 1, arbitrary: fc.constantFrom('<%', '%>', '{{=<% %>=}}', '<%={{ }}=%>', '{{=| |=}}', '|') },
  { weight: 2, arbitrary: fc.string({ maxLength: 6, unit: 'grapheme' }) },
);
const soup = fc.array(piece, { maxLength: 40 }).map((a) => a.join(''));

function render(templates: Record<string, string>, values: Record<string, string>, limits = LIMITS) {
  let out: Record<string, string> | undefined;
  const err = thrownBy(() => (out = renderTemplates(templates, values, limits)));
  return { out, err };
}

const outputBytes = (out: Record<string, string>) =>
  Object.entries(out).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);

describe('fuzz: template renderer', function () {
  this.timeout(timeoutFor(25_000));

  it('renders any text over any names, or fails with its own errors that quote no value', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('k', '__proto__', 'a.b')),
          fc.oneof(soup, fc.string({ maxLength: 60, unit: 'grapheme' })),
          { maxKeys: 3 },
        ),
        fc.dictionary(
          fc.oneof(fc.constantFrom('a', 'b', 'c.d', '__proto__', 'constructor', '.'), fc.string({ maxLength: 6 })),
          value,
          { maxKeys: 5 },
        ),
        (templates, values) => {
          const { out, err } = render(templates, values);
          if (err !== undefined) {
            assertTypedError(
              err,
              TEMPLATE_ERRORS,
              Object.values(values).filter((v) => v.length > 12),
            );
            return;
          }
          expect(Object.keys(out ?? {}).sort()).to.deep.equal(Object.keys(templates).sort());
          for (const v of Object.values(out ?? {})) expect(v).to.be.a('string');
        },
      ),
      runs(41, 800),
    );
  });

  it('never returns more than maxSecretBytes and never reads more than maxTemplateBytes, whatever the template', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('k', 'key.txt', 'é'), soup, { minKeys: 1, maxKeys: 3 }),
        fc.dictionary(fc.constantFrom('a', 'b', 'c.d'), fc.string({ maxLength: 200 }), { maxKeys: 3 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 600 }),
        (templates, values, maxTemplateBytes, maxSecretBytes) => {
          const limits = { maxTemplateBytes, maxSecretBytes };
          const { out, err } = render(templates, values, limits);
          const sourceBytes = Object.values(templates).reduce((n, t) => n + Buffer.byteLength(t), 0);
          if (sourceBytes > maxTemplateBytes) {
            assertTypedError(err, [LimitError]);
            expect((err as LimitError).reason).to.equal('TemplateTooLarge');
            return;
          }
          if (err !== undefined) {
            assertTypedError(err, TEMPLATE_ERRORS);
            if (err instanceof LimitError) expect(err.reason).to.equal('SecretTooLarge');
            return;
          }
          expect(outputBytes(out ?? {})).to.be.at.most(maxSecretBytes);
        },
      ),
      runs(42, 800),
    );
  });

  it('parses and renders a template of maxTemplateBytes built from the hardest pieces in linear time', () => {
    // One motif repeated to the 64 KiB bound. The motifs are what backtracks or rescans in mustache's
    // scanner: runs of whitespace up to the allowed maximum before something that is not a tag end,
    // unclosed and nested tags, and delimiter changes to long delimiters that almost match.
    const ws = fc
      .integer({ min: 1, max: MAX_WHITESPACE_RUN })
      .chain((n) => fc.constantFrom(' ', '\t', '\n', '\u00a0').map((c) => c.repeat(n)));
    const longTag = fc.integer({ min: 1, max: 400 }).map((n) => '<'.repeat(n));
    const motif = fc.oneof(
      fc
        .tuple(
          fc.constantFrom('{{a', '{{#a', '{{{a', '{{=', '{{!', '{{&a', '{{'),
          ws,
          fc.constantFrom('x', '}', '}}', '}}}', ''),
        )
        .map((p) => p.join('')),
      fc.tuple(ws, fc.constantFrom('{{a}}', '{{#a}}', '{{/a}}', '{{^b}}', 'x')).map((p) => p.join('')),
      longTag.map((t) => `{{=${t} ${t.replace(/</g, '>')}=}}${t.slice(1)}a${t.slice(1).replace(/</g, '>')}`),
      fc.constantFrom('{{#a}}', '{{/a}}', '{{#a}}{{.}}', '{{a}}', '{{{a}}}', '{', '}', '{{ ', ' }}'),
    );
    fc.assert(
      fc.property(fc.array(motif, { minLength: 1, maxLength: 3 }), fc.boolean(), (motifs, closeSections) => {
        const unit = motifs.join('');
        let template = unit.repeat(
          Math.max(1, Math.floor(LIMITS.maxTemplateBytes / Math.max(1, Buffer.byteLength(unit)))),
        );
        if (closeSections) template += '{{/a}}'.repeat(50);
        while (Buffer.byteLength(template) > LIMITS.maxTemplateBytes) template = template.slice(0, -1);
        const started = performance.now();
        const { err } = render({ k: template }, { a: 'v', b: '' });
        const elapsed = performance.now() - started;
        if (err !== undefined) assertTypedError(err, TEMPLATE_ERRORS);
        // The worst case measured for the bound is ~50 ms; a quadratic scan of 64 KiB takes seconds.
        expect(elapsed, `${JSON.stringify(unit.slice(0, 60))}: ${elapsed.toFixed(0)} ms`).to.be.lessThan(1_000);
      }),
      runs(43, 25),
    );
  });
});
