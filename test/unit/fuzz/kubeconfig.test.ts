// Fuzzing the kubeconfig reader (src/kube/config.ts) where it reads untrusted
// text: a ReplicationTarget's kubeconfig comes from a Secret, and the reader
// runs (embeddedOnly) inside the operator. Whatever the text, it ends in a
// usable connection or a KubeconfigError whose message and parts are bounded
// lines; never in a command run or a file read of the operator (the fallback to
// client-node, which could do either, is never taken); and within the size
// bound, in bounded time, however the YAML is shaped.
import { expect } from 'chai';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { KubeconfigError, MAX_EMBEDDED_KUBECONFIG_BYTES, kubeConfigFromString } from '../../../src/kube/config.js';
import { assertTypedError, jsonMutation, mutate, mutateJson, mutation, rejectionOf, runs, timeoutFor } from './fuzz.js';

const VALID = {
  apiVersion: 'v1',
  kind: 'Config',
  clusters: [{ name: 'dr', cluster: { server: 'https://dr.example:6443', 'certificate-authority-data': 'Q0E=' } }],
  users: [{ name: 'u', user: { token: 'dr-token-0123456789' } }],
  contexts: [{ name: 'dr', context: { cluster: 'dr', user: 'u' } }],
  'current-context': 'dr',
};

/** Reads `text` as replication does; the fallback (client-node, which may run commands) must never be reached. */
async function read(text: string): Promise<unknown> {
  return rejectionOf(() =>
    kubeConfigFromString(text, {
      embeddedOnly: true,
      fallback: () => Promise.reject(new Error('the client-node fallback was taken for an embedded kubeconfig')),
    }),
  );
}

function assertKubeconfigError(err: unknown): void {
  assertTypedError(err, [KubeconfigError], ['dr-token-0123456789']);
  for (const part of (err as KubeconfigError).parts) {
    expect(part.length).to.be.at.most(100);
    expect(part).to.not.match(/[\r\n]/);
  }
  expect((err as KubeconfigError).parts.length).to.be.at.most(6);
}

describe('fuzz: kubeconfigs from Secrets', function () {
  this.timeout(timeoutFor(25_000));
  // The operator runs with Node's default Error.stackTraceLimit (10); mocha sets it to Infinity. With whole
  // stacks captured, the YAML parser's errors at every level of a deep nesting make parsing quadratic, and
  // near the stack's end V8 may abort the process while compiling a regular expression (seen here only).
  let stackTraceLimit: number;
  before(() => {
    stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 10;
  });
  after(() => (Error.stackTraceLimit = stackTraceLimit));

  it('reads any text as a connection or a bounded KubeconfigError, never taking the fallback', async () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ maxLength: 200, unit: 'binary' }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => stringify(v)),
      fc
        .array(
          fc.constantFrom(
            'a: ',
            '- ',
            '[',
            ']',
            '{',
            '}',
            ', ',
            '&x ',
            '*x ',
            '!!str ',
            '? ',
            '|',
            '>',
            '"',
            "'",
            '#',
            '\n',
            '  ',
            '---\n',
            '%YAML 1.2\n',
            '<<: ',
            'user: ',
            'exec: ',
            'token: t',
          ),
          { maxLength: 40 },
        )
        .map((a) => a.join('')),
    );
    // Nothing is printed either: the parser's warnings quote the document.
    const warnings: string[] = [];
    const listener = (w: Error) => warnings.push(w.message);
    process.on('warning', listener);
    try {
      await fc.assert(
        fc.asyncProperty(text, async (t) => {
          const err = await read(t);
          if (err !== undefined) assertKubeconfigError(err);
        }),
        runs(71, 500),
      );
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings.slice(0, 3)).to.deep.equal([]);
  });

  it('refuses or reads consistently every structural change of a valid kubeconfig', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(jsonMutation, { minLength: 1, maxLength: 3 }), fc.boolean(), async (ms, flow) => {
        const doc = ms.reduce(mutateJson, VALID);
        const err = await read(flow ? JSON.stringify(doc) : stringify(doc));
        if (err !== undefined) assertKubeconfigError(err);
      }),
      runs(72, 400),
    );
  });

  it('refuses or reads consistently every byte-level change of a valid kubeconfig', async () => {
    const original = Buffer.from(stringify(VALID));
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (ms) => {
        const err = await read(ms.reduce(mutate, original).toString('utf8'));
        if (err !== undefined) assertKubeconfigError(err);
      }),
      runs(73, 400),
    );
  });

  it('reads or refuses a kubeconfig of up to the size bound, of any shape, in bounded time', async () => {
    // One YAML motif repeated to the bound: deep flow and block nesting, many keys (the parser used to compare
    // every key with all earlier ones), anchors, aliases, tags, merges, long scalars.
    const motif = fc.oneof(
      fc.constantFrom('[', '{a: ', '- ', '? ', '&a ', '*a ', '!!str ', '"\\\\', "'x", '#c\n', ' '),
      fc.nat({ max: 1_000_000 }).map((i) => `k${i}: v\n`),
      fc.nat({ max: 1_000 }).map((i) => `k${i}: &a${i} !!str v\n`),
      fc.nat({ max: 1_000 }).map((i) => `k${i}: {<<: *a, x: [1, 2]}\n`),
      fc.integer({ min: 1, max: 200 }).map((n) => `${' '.repeat(n)}a:\n`),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(motif, { minLength: 1, maxLength: 3 }), fc.boolean(), async (parts, overflow) => {
        const unit = parts.join('');
        const times = Math.ceil((MAX_EMBEDDED_KUBECONFIG_BYTES + (overflow ? 1 : 0)) / Buffer.byteLength(unit));
        let text = unit.repeat(times);
        if (!overflow) text = text.slice(0, MAX_EMBEDDED_KUBECONFIG_BYTES);
        const started = performance.now();
        const err = await read(text);
        const elapsed = performance.now() - started;
        if (err !== undefined) assertKubeconfigError(err);
        if (Buffer.byteLength(text) > MAX_EMBEDDED_KUBECONFIG_BYTES)
          expect((err as Error).message).to.include('larger than');
        expect(elapsed, `${JSON.stringify(unit.slice(0, 40))}: ${elapsed.toFixed(0)} ms`).to.be.lessThan(2_000);
      }),
      runs(74, 12),
    );
  });
});

describe('fuzz findings: kubeconfigs from Secrets (fixed examples)', () => {
  let stackTraceLimit: number;
  before(() => {
    stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 10;
  });
  after(() => (Error.stackTraceLimit = stackTraceLimit));

  it('refuses mapping keys that are collections at once (1 KiB of "? " took 64 s to turn into object keys)', async function () {
    this.timeout(10_000);
    for (const text of ['? '.repeat(512), '? ? ? a\n', '[a, b]: c\n', '{a: 1}: c\n']) {
      const started = performance.now();
      const err = await read(text);
      assertKubeconfigError(err);
      expect((err as KubeconfigError).problem).to.equal('invalid');
      expect(performance.now() - started, JSON.stringify(text.slice(0, 20))).to.be.lessThan(300);
    }
  });

  it('refuses 64 KiB of repeated anchors or aliases in linear time (each error was made pretty with its line)', async function () {
    this.timeout(30_000);
    // Before: 1.5 s and more for '&a ' (the work itself, so on any load); now 0.2 s. The best of three runs
    // keeps a busy machine from failing it.
    for (const unit of ['&a ', '*a ', '!!str ']) {
      const text = unit
        .repeat(Math.ceil(MAX_EMBEDDED_KUBECONFIG_BYTES / unit.length))
        .slice(0, MAX_EMBEDDED_KUBECONFIG_BYTES);
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        assertKubeconfigError(await read(text));
        best = Math.min(best, performance.now() - started);
      }
      expect(best, `${unit}: ${best.toFixed(0)} ms`).to.be.lessThan(1_000);
    }
  });

  it('reads a kubeconfig of 6,000 keys in linear time (unique-key checks were quadratic)', async function () {
    this.timeout(10_000);
    // 6,000 keys fit the bound; before, 20,000 keys took 3 s and 50,000 minutes.
    const filler = Array.from({ length: 6_000 }, (_, i) => `k${i}: v`).join('\n');
    const text = `${stringify(VALID)}${filler}\n`;
    expect(Buffer.byteLength(text)).to.be.at.most(MAX_EMBEDDED_KUBECONFIG_BYTES);
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      expect(await read(text)).to.equal(undefined);
      best = Math.min(best, performance.now() - started);
    }
    // Before: 1 s (the work itself); now about 0.1 s. The best of three keeps a busy machine from failing it.
    expect(best, `${best.toFixed(0)} ms`).to.be.lessThan(500);
  });

  it('refuses a kubeconfig over the bound before parsing it', async () => {
    const started = performance.now();
    const err = await read(`${'['.repeat(256 * 1024)}${']'.repeat(256 * 1024)}`);
    assertKubeconfigError(err);
    expect((err as KubeconfigError).problem).to.equal('invalid');
    expect((err as Error).message).to.include(`larger than ${MAX_EMBEDDED_KUBECONFIG_BYTES} bytes`);
    expect(performance.now() - started).to.be.lessThan(100);
  });

  it('names at most a few unsupported user settings, each a bounded line', async () => {
    const user: Record<string, string> = { token: 't' };
    for (let i = 0; i < 50; i++) user[`setting-${i}-${'x'.repeat(300)}\nforged`] = 'v';
    const err = await read(stringify({ ...VALID, users: [{ name: 'u', user }] }));
    assertKubeconfigError(err);
    expect((err as KubeconfigError).problem).to.equal('unsafe');
    expect((err as KubeconfigError).parts.at(-1)).to.equal('45 more');
  });
});

describe('fuzz findings: YAML warnings (fixed example)', () => {
  it('prints no YAML warning, which would quote the kubeconfig (a token with an unknown tag)', async () => {
    const warnings: string[] = [];
    const listener = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', listener);
    try {
      const text = stringify(VALID).replace('token: dr-token-0123456789', 'token: !dr-token-0123456789');
      expect(text).to.include('!dr-token');
      await read(text);
      await read('%UnknownDirective x\n---\na: 1\n');
      await read('? [a, b]\n: c\n');
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings).to.deep.equal([]);
  });
});
