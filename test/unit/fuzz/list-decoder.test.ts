// Fuzzing the list body decoder (src/kube/list-decoder.ts): list pages come
// from the API server, but their items hold whatever namespaces wrote (names,
// templates, data with quotes, braces and backslashes), and the network cuts
// the body anywhere, also inside a multi-byte character. Any chunking of any
// list, compact or indented, decodes to what JSON.parse makes of the whole
// body; any bytes end in a result or the decoder's own ListDecodeError, whose
// message never holds the body's bytes.
import { expect } from 'chai';
import fc from 'fast-check';
import { ListDecodeError, ListPageDecoder } from '../../../src/kube/list-decoder.js';
import { chunked, runs, thrownBy, timeoutFor } from './fuzz.js';

function decode(chunks: Buffer[]): unknown {
  const decoder = new ListPageDecoder<unknown>((item) => item);
  for (const chunk of chunks) decoder.push(chunk);
  return decoder.end();
}

// Text that JSON must escape, and the characters the scanner looks for.
const tricky = fc.oneof(
  fc.string({ maxLength: 20, unit: 'grapheme' }),
  fc.constantFrom('"', '\\', '\\"', '{', '}', '[', ']', ',', '"items":[', '\u2028', '\u{1F600}', '\u00e9', '\n'),
);
const item = fc.record({
  apiVersion: fc.constant('v1'),
  kind: fc.constant('Secret'),
  metadata: fc.record({ name: tricky, annotations: fc.dictionary(tricky, tricky, { maxKeys: 3 }) }),
  data: fc.dictionary(tricky, fc.oneof(tricky, fc.jsonValue({ maxDepth: 3 })), { maxKeys: 4 }),
});
const list = fc.record(
  {
    kind: fc.constantFrom('SecretList', 'items'),
    apiVersion: fc.constant('v1'),
    metadata: fc.record(
      { resourceVersion: fc.string({ maxLength: 8 }), continue: tricky },
      { requiredKeys: ['resourceVersion'] },
    ),
    items: fc.array(item, { maxLength: 5 }),
    // A field after the items array, and one whose name starts like it.
    itemsCount: fc.nat(),
  },
  { requiredKeys: ['kind', 'metadata', 'items'] },
);

describe('fuzz: list body decoder', function () {
  this.timeout(timeoutFor(20_000));

  it('decodes any chunking of any list, compact or indented, to what JSON.parse makes of it', () => {
    fc.assert(
      fc.property(list, fc.constantFrom(0, 1, 2), fc.array(fc.nat(), { maxLength: 40 }), (body, indent, cuts) => {
        const bytes = Buffer.from(JSON.stringify(body, null, indent), 'utf8');
        expect(decode(chunked(bytes, cuts))).to.deep.equal(JSON.parse(bytes.toString('utf8')));
      }),
      runs(41, 400),
    );
  });

  it('ends any bytes in a result or its own error, never quoting them', () => {
    const secret = 'hunter2-SECRET';
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      // A valid list cut short, with bytes changed or added.
      fc
        .tuple(list, fc.nat(), fc.nat(), fc.constantFrom('', '}', ']', '"', ',', secret, '{'))
        .map(([body, cut, at, extra]) => {
          const text = JSON.stringify({ ...body, items: [...body.items, { data: secret }] });
          const head = text.slice(0, cut % (text.length + 1));
          const p = at % (head.length + 1);
          return Buffer.from(head.slice(0, p) + extra + head.slice(p), 'utf8');
        }),
    );
    fc.assert(
      fc.property(bytes, fc.array(fc.nat(), { maxLength: 10 }), (input, cuts) => {
        const err = thrownBy(() => decode(chunked(input, cuts)));
        if (err === undefined) return;
        expect(err).to.be.instanceOf(ListDecodeError);
        expect((err as Error).message).not.to.include('hunter2');
      }),
      runs(42, 400),
    );
  });
});

describe('list body decoder', () => {
  it('maps each item as its last byte arrives, before the body ends', () => {
    const mapped: string[] = [];
    const decoder = new ListPageDecoder<{ metadata: { name: string } }, string>((o) => {
      mapped.push(o.metadata.name);
      return o.metadata.name;
    });
    decoder.push(Buffer.from('{"kind":"L","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"a"}}'));
    expect(mapped).to.deep.equal(['a']);
    decoder.push(Buffer.from(',{"metadata":{"name":"b"}}]}'));
    expect(decoder.end()).to.deep.equal({ kind: 'L', metadata: { resourceVersion: '7' }, items: ['a', 'b'] });
  });

  it('refuses a body cut off inside the items, and one with items not separated by commas', () => {
    const cut = new ListPageDecoder<unknown>((x) => x);
    cut.push(Buffer.from('{"items":[{"a":1},{"b":'));
    expect(() => cut.end()).to.throw(ListDecodeError, /ended early/);
    const glued = new ListPageDecoder<unknown>((x) => x);
    expect(() => glued.push(Buffer.from('{"items":[{"a":1} {"b":2}]}'))).to.throw(ListDecodeError, /unexpected/);
  });

  it('refuses an item longer than its bound without keeping it', () => {
    const decoder = new ListPageDecoder<unknown>((x) => x, 1_000);
    decoder.push(Buffer.from('{"items":[{"data":"'));
    expect(() => decoder.push(Buffer.alloc(2_000, 0x61))).to.throw(ListDecodeError, /longer than 1000 bytes/);
  });
});
