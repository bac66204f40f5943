import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { captureIo, type CapturedIo } from '../helpers/index.js';

const SECRET = 's3cret-value-0123';

describe('secretsync store', () => {
  let tmp: string;
  let dir: string;
  let keyFile: string;
  const savedEnv: Record<string, string | undefined> = {};

  before(() => {
    // The CLI honours these; a developer's shell must not change what the tests see.
    for (const name of ['SECRETSYNC_STORE_DIR', 'SECRETSYNC_MASTER_KEY_FILE']) {
      savedEnv[name] = process.env[name];
      delete process.env[name];
    }
  });

  after(() => {
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'secretsync-cli-'));
    dir = join(tmp, 'store');
    keyFile = join(tmp, 'master.key');
    await writeFile(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** Runs `secretsync store …` with the temp store and key unless the args say otherwise. */
  async function store(
    args: string[],
    stdin: Buffer | string = '',
    common = true,
  ): Promise<CapturedIo & { code: number }> {
    const io = captureIo(stdin);
    const extra = common ? ['--dir', dir, '--master-key-file', keyFile] : [];
    const code = await main(['node', 'secretsync', 'store', ...args, ...extra], io);
    return Object.assign(io, { code });
  }

  function expectFailure(r: CapturedIo & { code: number }, message: RegExp): void {
    expect(r.code, r.errLines.join('\n')).to.not.equal(0);
    expect(r.errLines.join('\n')).to.match(message);
    expect(r.outLines).to.deep.equal([]);
  }

  it('put reads a JSON object from stdin; get prints one property or all of them', async () => {
    const put = await store(['put', 'db/prod'], JSON.stringify({ user: 'app', password: SECRET }));
    expect(put.code, put.errLines.join('\n')).to.equal(0);
    expect(put.outLines).to.deep.equal(['stored db/prod version 1']);

    const one = await store(['get', 'db/prod', '--property', 'password']);
    expect(one.code).to.equal(0);
    expect(one.outLines).to.deep.equal([SECRET]);

    const all = await store(['get', 'db/prod']);
    expect(JSON.parse(all.outLines.join('\n'))).to.deep.equal({ user: 'app', password: SECRET });
  });

  it('put --property stores one raw value over the latest version, dropping one trailing newline from stdin', async () => {
    await store(['put', 'db/prod'], JSON.stringify({ user: 'app', password: 'old' }));
    const r = await store(['put', 'db/prod', '--property', 'password'], `${SECRET}\n`);
    expect(r.outLines).to.deep.equal(['stored db/prod version 2']);
    const all = await store(['get', 'db/prod']);
    expect(JSON.parse(all.outLines.join('\n'))).to.deep.equal({ user: 'app', password: SECRET });
    const pinned = await store(['get', 'db/prod', '--version', '1', '--property', 'password']);
    expect(pinned.outLines).to.deep.equal(['old']);
  });

  it('put --from-file takes the file byte for byte', async () => {
    const file = join(tmp, 'cert.pem');
    await writeFile(file, '-----BEGIN X-----\nabc\n-----END X-----\n');
    await store(['put', 'tls/cert', '--property', 'tls.crt', '--from-file', file]);
    const r = await store(['get', 'tls/cert']);
    expect(JSON.parse(r.outLines.join('\n'))).to.deep.equal({ 'tls.crt': '-----BEGIN X-----\nabc\n-----END X-----\n' });
    const json = join(tmp, 'props.json');
    await writeFile(json, JSON.stringify({ a: 'b' }));
    expect((await store(['put', 'from/json', '--from-file', json])).outLines).to.deep.equal([
      'stored from/json version 1',
    ]);
  });

  it('put refuses a value given on the command line, without echoing it', async () => {
    for (const args of [
      ['put', 'db/prod', SECRET],
      ['put', 'db/prod', `--password=${SECRET}`],
      ['put', 'db/prod', '--value', SECRET],
      ['put', `--value=${SECRET}`, 'db/prod'],
    ]) {
      const r = await store(args, JSON.stringify({ password: 'from-stdin' }));
      expectFailure(r, /values are read only from stdin or --from-file, never from the command line/);
      expect(r.errLines.join('\n')).to.not.include(SECRET);
    }
    expect(await readdir(tmp)).to.not.include('store');
  });

  it('put refuses input that is not a JSON object of strings, without quoting it', async () => {
    const cases: [string, RegExp][] = [
      [`password=${SECRET}`, /^secretsync: the input is not valid JSON/],
      [`{"password": "${SECRET}"`, /^secretsync: the input is not valid JSON/],
      [JSON.stringify([SECRET]), /^secretsync: the input must be a JSON object of string properties$/],
      [JSON.stringify({ port: 5432 }), /^secretsync: property "port" must be a string$/],
      ['', /^secretsync: no input/],
    ];
    for (const [input, message] of cases) {
      const r = await store(['put', 'db/prod'], input);
      expectFailure(r, message);
      expect(r.errLines.join('\n')).to.not.include(SECRET);
    }
    expectFailure(
      await store(['put', 'bin/ary', '--property', 'p'], Buffer.from([0xff, 0xfe, 0x00])),
      /not UTF-8 text/,
    );
  });

  it('--keep-versions prunes, and history shows versions and times only', async () => {
    for (let i = 1; i <= 4; i++) {
      await store(['put', 'k', '--keep-versions', '2'], JSON.stringify({ v: `${SECRET}-${i}` }));
    }
    const h = await store(['history', 'k']);
    expect(h.code).to.equal(0);
    expect(h.outLines[0]).to.match(/^VERSION\s+CREATED$/);
    expect(h.outLines.slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal(['3', '4']);
    expect(h.outLines.join('\n')).to.not.include(SECRET);
    expectFailure(await store(['get', 'k', '--version', '1']), /^secretsync: entry "k" has no version 1$/);
    expectFailure(await store(['put', 'k', '--keep-versions', '0'], '{}'), /--keep-versions must be a whole number/);
  });

  it('list prints a table of names and versions, never values', async () => {
    await store(['put', 'app/b'], JSON.stringify({ v: SECRET }));
    await store(['put', 'app/b'], JSON.stringify({ v: SECRET }));
    await store(['put', 'app/a'], JSON.stringify({ v: SECRET }));
    await store(['put', 'other'], JSON.stringify({ v: SECRET }));
    const r = await store(['list']);
    expect(r.code).to.equal(0);
    expect(r.outLines[0]).to.match(/^NAME\s+VERSION\s+VERSIONS\s+UPDATED$/);
    const rows = r.outLines.slice(1).map((l) => l.split(/\s+/));
    expect(rows.map((c) => c.slice(0, 3))).to.deep.equal([
      ['app/a', '1', '1'],
      ['app/b', '2', '2'],
      ['other', '1', '1'],
    ]);
    expect(rows[0]?.[3]).to.match(/^\d{4}-\d\d-\d\dT/);
    expect(r.outLines.join('\n')).to.not.include(SECRET);
    const prefixed = await store(['list', '--prefix', 'app/']);
    expect(prefixed.outLines.slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal(['app/a', 'app/b']);
  });

  it('delete removes an entry; a missing one is an error', async () => {
    await store(['put', 'gone'], JSON.stringify({ v: SECRET }));
    expect((await store(['delete', 'gone'])).outLines).to.deep.equal(['deleted gone']);
    expectFailure(await store(['delete', 'gone']), /^secretsync: entry "gone" not found$/);
    expectFailure(await store(['get', 'gone']), /^secretsync: entry "gone" not found$/);
  });

  it('reseal refuses an entry rolled back to an older copy unless --accept, and then get reads that copy', async () => {
    await store(['put', 'db/prod'], JSON.stringify({ password: 'first' }));
    const file = join(dir, (await readdir(dir)).find((n) => /^[0-9a-f]{64}\.json$/.test(n)) ?? '');
    const older = await readFile(file, 'utf8');
    await store(['put', 'db/prod'], JSON.stringify({ password: SECRET }));
    await writeFile(file, older);
    expectFailure(
      await store(['get', 'db/prod']),
      /^secretsync: entry "db\/prod" was rolled back: its file holds generation 1, the store manifest records generation 2;/,
    );
    const refused = await store(['reseal']);
    expect(refused.code).to.not.equal(0);
    expect(refused.errLines[0]).to.match(/^refused db\/prod: entry "db\/prod" was rolled back/);
    expect(refused.errLines.at(-1)).to.equal('secretsync: 1 of 1 entries refused; nothing was changed for them');
    const accepted = await store(['reseal', 'db/prod', '--accept']);
    expect(accepted.code, accepted.errLines.join('\n')).to.equal(0);
    expect(accepted.outLines).to.have.length(1);
    expect(accepted.outLines[0]).to.match(
      /^accepted db\/prod \(generation 3\), which had failed: entry "db\/prod" was rolled back/,
    );
    expect((await store(['get', 'db/prod', '--property', 'password'])).outLines).to.deep.equal(['first']);
    expect((await store(['reseal'])).outLines).to.deep.equal(['current db/prod (generation 3)']);
    for (const r of [refused, accepted]) expect([...r.outLines, ...r.errLines].join('\n')).to.not.include(SECRET);
  });

  it('get of a missing property names it', async () => {
    await store(['put', 'db'], JSON.stringify({ user: 'u' }));
    expectFailure(await store(['get', 'db', '--property', 'password']), /has no property "password"$/);
  });

  it('no plaintext reaches the store directory', async () => {
    await store(['put', 'db/prod'], JSON.stringify({ password: SECRET }));
    await store(['put', 'db/prod', '--property', 'other'], SECRET);
    for (const f of await readdir(dir)) expect(await readFile(join(dir, f), 'utf8')).to.not.include(SECRET);
  });

  describe('master key and directory', () => {
    it('refuses to run without a master key or without a directory', async () => {
      expectFailure(
        await store(['list', '--dir', dir], '', false),
        /^secretsync: no master key: give --master-key-file/,
      );
      expectFailure(
        await store(['list', '--master-key-file', keyFile], '', false),
        /^secretsync: no store directory: give --dir or set SECRETSYNC_STORE_DIR$/,
      );
      expectFailure(
        await store(['list', '--master-key-secret', 'ns/name'], ''),
        /^secretsync: give either --master-key-file or --master-key-secret, not both$/,
      );
    });

    it('reads the directory and key file from the environment', async () => {
      process.env.SECRETSYNC_STORE_DIR = dir;
      process.env.SECRETSYNC_MASTER_KEY_FILE = keyFile;
      try {
        expect((await store(['put', 'env/k'], '{"a":"b"}', false)).outLines).to.deep.equal(['stored env/k version 1']);
        expect((await store(['get', 'env/k', '--property', 'a'], '', false)).outLines).to.deep.equal(['b']);
      } finally {
        delete process.env.SECRETSYNC_STORE_DIR;
        delete process.env.SECRETSYNC_MASTER_KEY_FILE;
      }
    });

    it('refuses a wrong, missing or malformed master key file without printing key material', async () => {
      await store(['put', 'db'], JSON.stringify({ password: SECRET }));
      const wrong = join(tmp, 'wrong.key');
      const wrongKey = randomBytes(32).toString('hex');
      await writeFile(wrong, wrongKey);
      const r = await store(['get', 'db', '--dir', dir, '--master-key-file', wrong], '', false);
      expectFailure(
        r,
        /^secretsync: the master key does not match the store: its manifest was written with master key id [0-9a-f]{16}, the key given has id [0-9a-f]{16}$/,
      );
      expect(r.errLines.join('\n')).to.not.include(wrongKey);

      const bad = join(tmp, 'bad.key');
      await writeFile(bad, 'my passphrase');
      expectFailure(
        await store(['get', 'db', '--dir', dir, '--master-key-file', bad], '', false),
        new RegExp(`^secretsync: master key file ${bad}: master key must be 32 bytes \\(raw, base64 or hex\\)$`),
      );
      expectFailure(
        await store(['get', 'db', '--dir', dir, '--master-key-file', join(tmp, 'none')], '', false),
        /^secretsync: cannot read master key file .*none: ENOENT$/,
      );
    });

    it('an unreadable or missing directory is one clear line', async () => {
      expectFailure(
        await store(['list', '--dir', join(tmp, 'missing'), '--master-key-file', keyFile], '', false),
        /^secretsync: local store directory .*missing does not exist or is unreadable/,
      );
    });

    it('--master-key-secret must be NAMESPACE/NAME, and a bad kubeconfig is reported', async () => {
      expectFailure(
        await store(['list', '--dir', dir, '--master-key-secret', 'just-a-name'], '', false),
        /^secretsync: --master-key-secret must be NAMESPACE\/NAME, got "just-a-name"$/,
      );
      expectFailure(
        await store(
          ['list', '--dir', dir, '--master-key-secret', 'ns/key', '--kubeconfig', join(tmp, 'no-kubeconfig')],
          '',
          false,
        ),
        /^secretsync: cannot load kubeconfig .*no-kubeconfig/,
      );
    });
  });

  it('an unknown subcommand or option exits non-zero', async () => {
    expect((await store(['frobnicate'], '', false)).code).to.not.equal(0);
    expect((await store(['list', '--bogus'])).code).to.not.equal(0);
  });
});
