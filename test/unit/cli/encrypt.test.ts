import { expect } from 'chai';
import { Command, CommanderError } from 'commander';
import { parse, parseAllDocuments } from 'yaml';
import type { ManagedSecret } from '../../../src/api/types.js';
import { registerEncryptCommands } from '../../../src/cli/commands/encrypt.js';
import { parseCiphertext } from '../../../src/crypto/ciphertext.js';
import { KmsDecryptor, KmsEncryptor } from '../../../src/providers/aws-kms/index.js';
import { captureIo, type CapturedIo } from '../helpers/index.js';
import { FakeKms } from '../providers/aws-kms/fake-kms.js';

const SECRET = 's3cret-value-0123';
const binding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };
const BIND = ['--namespace', 'team-a', '--name', 'db', '--secret-key', 'password'];

describe('secretsync encrypt / reencrypt', () => {
  let kms: FakeKms;
  let key: string;
  let decryptor: KmsDecryptor;
  let requested: { region?: string; endpoint?: string }[];

  beforeEach(() => {
    kms = new FakeKms();
    key = kms.createKey('alias/app');
    decryptor = new KmsDecryptor(kms);
    requested = [];
  });

  /** Runs the commands the way `main()` does: errors become one stderr line and a non-zero code. */
  async function cli(args: string[], stdin: Buffer | string = ''): Promise<CapturedIo & { code: number }> {
    const io = captureIo(stdin);
    const program = new Command('secretsync')
      .exitOverride()
      .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
    registerEncryptCommands(program, io, {
      kms: (options) => {
        requested.push({ region: options.region, endpoint: options.endpoint });
        return kms;
      },
    });
    for (const cmd of program.commands) cmd.exitOverride();
    let code = 0;
    try {
      await program.parseAsync(['node', 'secretsync', ...args]);
    } catch (err) {
      if (err instanceof CommanderError) code = err.exitCode || 1;
      else {
        io.err(`secretsync: ${err instanceof Error ? err.message : String(err)}`);
        code = 1;
      }
    }
    // Whatever happened, the value is nowhere in what was printed... except inside a ciphertext.
    expect(io.errLines.join('\n')).to.not.include(SECRET);
    expect(io.outLines.join('\n')).to.not.include(SECRET);
    return Object.assign(io, { code });
  }

  function expectFailure(r: CapturedIo & { code: number }, message: RegExp): void {
    expect(r.code, r.outLines.join('\n')).to.not.equal(0);
    expect(r.errLines.join('\n')).to.match(message);
    expect(r.outLines).to.deep.equal([]);
  }

  describe('encrypt', () => {
    it('prints a ciphertext of stdin (one trailing newline dropped) that decrypts where it is bound', async () => {
      const r = await cli(['encrypt', '--key', 'alias/app', ...BIND, '--region', 'eu-west-1'], `${SECRET}\n`);
      expect(r.code, r.errLines.join('\n')).to.equal(0);
      expect(r.outLines).to.have.length(1);
      const ciphertext = r.outLines[0] ?? '';
      expect(parseCiphertext(ciphertext)).to.include({ mode: 'direct', scope: 'strict', keyId: key });
      expect(await decryptor.decrypt(ciphertext, binding)).to.equal(SECRET);
      expect(requested).to.deep.equal([{ region: 'eu-west-1', endpoint: undefined }]);
      expect(kms.closed).to.equal(true);
    });

    it('drops only one newline, and none with --raw', async () => {
      const two = await cli(['encrypt', '--key', key, ...BIND], `${SECRET}\n\n`);
      expect(await decryptor.decrypt(two.outLines[0] ?? '', binding)).to.equal(`${SECRET}\n`);
      const crlf = await cli(['encrypt', '--key', key, ...BIND], `${SECRET}\r\n`);
      expect(await decryptor.decrypt(crlf.outLines[0] ?? '', binding)).to.equal(SECRET);
      const raw = await cli(['encrypt', '--key', key, ...BIND, '--raw'], `${SECRET}\n`);
      expect(await decryptor.decrypt(raw.outLines[0] ?? '', binding)).to.equal(`${SECRET}\n`);
    });

    it('takes the scope from --scope, needing only what the scope binds to', async () => {
      const ns = await cli(['encrypt', '--key', key, '--scope', 'namespace', '--namespace', 'team-a'], SECRET);
      expect(ns.code, ns.errLines.join('\n')).to.equal(0);
      expect(await decryptor.decrypt(ns.outLines[0] ?? '', { ...binding, managedSecret: 'any' })).to.equal(SECRET);
      const cluster = await cli(['encrypt', '--key', key, '--scope', 'cluster'], SECRET);
      expect(parseCiphertext(cluster.outLines[0] ?? '').scope).to.equal('cluster');
      expectFailure(
        await cli(['encrypt', '--key', key, '--namespace', 'team-a'], SECRET),
        /--name, --secret-key are required for --scope strict/,
      );
      expectFailure(await cli(['encrypt', '--key', key, '--scope', 'namespace'], SECRET), /--namespace is required/);
      expectFailure(
        await cli(['encrypt', '--key', key, '--scope', 'global'], SECRET),
        /Allowed choices are strict, namespace, cluster/,
      );
    });

    it('encrypts long values in an envelope', async () => {
      const value = 'v'.repeat(10_000);
      const r = await cli(['encrypt', '--key', key, ...BIND], value);
      expect(parseCiphertext(r.outLines[0] ?? '').mode).to.equal('envelope');
      expect(await decryptor.decrypt(r.outLines[0] ?? '', binding)).to.equal(value);
    });

    it('--output yaml prints a whole ManagedSecret ready to commit', async () => {
      const r = await cli(['encrypt', '--key', key, ...BIND, '--output', 'yaml'], SECRET);
      expect(r.code, r.errLines.join('\n')).to.equal(0);
      const manifest = parse(r.outLines.join('\n')) as ManagedSecret;
      expect(manifest).to.deep.include({
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'ManagedSecret',
        metadata: { name: 'db', namespace: 'team-a' },
      });
      expect(manifest.spec.storeRef).to.deep.equal({ name: 'kms' });
      expect(manifest.spec.data).to.have.length(1);
      const item = manifest.spec.data?.[0];
      expect(item?.secretKey).to.equal('password');
      expect(await decryptor.decrypt(item?.ciphertext ?? '', binding)).to.equal(SECRET);

      const other = await cli(['encrypt', '--key', key, ...BIND, '--output', 'yaml', '--store', 'vault'], SECRET);
      expect((parse(other.outLines.join('\n')) as ManagedSecret).spec.storeRef.name).to.equal('vault');
      expectFailure(
        await cli(['encrypt', '--key', key, '--scope', 'cluster', '--output', 'yaml'], SECRET),
        /--namespace, --name, --secret-key are required with --output yaml/,
      );
    });

    it('reads the value from stdin only, and never repeats an argument that could be it', async () => {
      expectFailure(
        await cli(['encrypt', '--key', key, ...BIND, SECRET], ''),
        /unexpected arguments; values are read only from stdin/,
      );
      const r = await cli(['encrypt', '--key', key, ...BIND, `--value=${SECRET}`], '');
      expectFailure(r, /unknown option --value;/);
      expectFailure(await cli(['encrypt', '--key', key, ...BIND], ''), /no value on stdin/);
      expectFailure(await cli(['encrypt', '--key', key, ...BIND], '\n'), /no value on stdin/);
      expectFailure(await cli(['encrypt', '--key', key, ...BIND], Buffer.from([0xff, 0x00])), /not UTF-8/);
      expect(kms.calls).to.deep.equal([]);
    });

    it('checks the binding and the key flag', async () => {
      expectFailure(
        await cli(['encrypt', '--key', key, ...BIND.slice(2), '--namespace', 'Team_A'], SECRET),
        /--namespace must be/,
      );
      expectFailure(
        await cli(['encrypt', '--key', key, '--namespace', 'a', '--name', 'Bad', '--secret-key', 'k'], SECRET),
        /--name must be/,
      );
      expectFailure(
        await cli(['encrypt', '--key', key, '--namespace', 'a', '--name', 'b', '--secret-key', 'k/1'], SECRET),
        /--secret-key must be/,
      );
      expectFailure(await cli(['encrypt', ...BIND], SECRET), /required option '--key <key>' not specified/);
    });

    it('reports a KMS failure without the value', async () => {
      expectFailure(
        await cli(['encrypt', '--key', 'alias/missing', ...BIND], SECRET),
        /KMS Encrypt with key alias\/missing failed: NotFoundException/,
      );
    });
  });

  describe('reencrypt', () => {
    let newKey: string;
    let encryptor: KmsEncryptor;

    beforeEach(() => {
      newKey = kms.createKey('alias/new');
      encryptor = new KmsEncryptor(kms);
    });

    it('re-wraps one ciphertext per line under the new key, keeping blank lines', async () => {
      const a = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding });
      const b = await encryptor.encrypt('x'.repeat(5000), { keyId: key, scope: 'strict', binding });
      const r = await cli(['reencrypt', '--key', 'alias/new', ...BIND], `${a}\n\n${b}\n`);
      expect(r.code, r.errLines.join('\n')).to.equal(0);
      const lines = r.outLines.join('\n').split('\n');
      expect(lines).to.have.length(3);
      expect(lines[1]).to.equal('');
      expect(parseCiphertext(lines[0] ?? '')).to.include({ keyId: newKey, mode: 'direct', scope: 'strict' });
      expect(parseCiphertext(lines[2] ?? '')).to.include({ keyId: newKey, mode: 'envelope' });
      expect(await decryptor.decrypt(lines[0] ?? '', binding)).to.equal(SECRET);
      expect(await decryptor.decrypt(lines[2] ?? '', binding)).to.equal('x'.repeat(5000));
    });

    it('names the line and the missing binding when it cannot', async () => {
      const a = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding });
      expectFailure(
        await cli(['reencrypt', '--key', newKey], `${a}\n`),
        /line 1: .*needs a namespace.*give the --namespace/,
      );
      expectFailure(
        await cli(['reencrypt', '--key', newKey, ...BIND.slice(0, 4), '--secret-key', 'other'], `\n${a}\n`),
        /line 2: KMS refused ReEncrypt/,
      );
      expectFailure(await cli(['reencrypt', '--key', newKey], 'hunter2\n'), /line 1: not a secretsync ciphertext/);
      expectFailure(await cli(['reencrypt', '--key', newKey], '\n\n'), /no ciphertexts on stdin/);
    });

    it('re-wraps every ciphertext of ManagedSecret YAML and leaves everything else as it was', async () => {
      const a = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding });
      const b = await encryptor.encrypt('second', {
        keyId: key,
        scope: 'strict',
        binding: { ...binding, secretKey: 'username' },
      });
      const input = [
        '# team-a database credentials',
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata: {name: untouched, namespace: team-a}',
        '---',
        'apiVersion: secretsync.io/v1alpha1',
        'kind: ManagedSecret',
        'metadata:',
        '  name: db',
        '  namespace: team-a',
        'spec:',
        '  storeRef: {name: kms}',
        '  data:',
        `    - secretKey: password # the main one`,
        `      ciphertext: ${a}`,
        '    - secretKey: host',
        '      remoteRef: {key: db/host}',
        '    - secretKey: username',
        `      ciphertext: ${b}`,
        '',
      ].join('\n');
      const r = await cli(['reencrypt', '--key', newKey, '--input', 'yaml'], input);
      expect(r.code, r.errLines.join('\n')).to.equal(0);
      const text = r.outLines.join('\n');
      expect(text).to.include('# team-a database credentials');
      expect(text).to.include('# the main one');
      const docs = parseAllDocuments(text);
      if (!Array.isArray(docs)) throw new Error('expected documents');
      expect(docs[0]?.toJS()).to.deep.equal({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'untouched', namespace: 'team-a' },
      });
      const ms = docs[1]?.toJS() as ManagedSecret;
      const [pw, host, user] = ms.spec.data ?? [];
      expect(host).to.deep.equal({ secretKey: 'host', remoteRef: { key: 'db/host' } });
      expect(parseCiphertext(pw?.ciphertext ?? '').keyId).to.equal(newKey);
      expect(await decryptor.decrypt(pw?.ciphertext ?? '', binding)).to.equal(SECRET);
      expect(await decryptor.decrypt(user?.ciphertext ?? '', { ...binding, secretKey: 'username' })).to.equal('second');
    });

    it('refuses YAML without ciphertexts, or with a ciphertext for elsewhere', async () => {
      expectFailure(
        await cli(['reencrypt', '--key', newKey, '--input', 'yaml'], 'kind: ConfigMap\n'),
        /no ManagedSecret with data\[\]\.ciphertext/,
      );
      const a = await encryptor.encrypt(SECRET, { keyId: key, scope: 'strict', binding });
      const moved = `kind: ManagedSecret\nmetadata: {name: db, namespace: team-b}\nspec:\n  data:\n    - {secretKey: password, ciphertext: ${a}}\n`;
      expectFailure(
        await cli(['reencrypt', '--key', newKey, '--input', 'yaml'], moved),
        /ManagedSecret team-b\/db, secret key "password": KMS refused/,
      );
      expectFailure(await cli(['reencrypt', '--key', newKey, '--input', 'yaml'], 'a: [\n'), /YAML document 1/);
    });
  });
});
