import { expect } from 'chai';
import { Command, CommanderError } from 'commander';
import { parse } from 'yaml';
import type { ManagedSecret } from '../../../src/api/types.js';
import { registerEncryptCommands } from '../../../src/cli/commands/encrypt.js';
import type { VaultConnectionOptions } from '../../../src/cli/vault-connection.js';
import { vaultConnection } from '../../../src/cli/vault-connection.js';
import { parseTransitCiphertext } from '../../../src/crypto/transit-ciphertext.js';
import { TransitDecryptor, TransitKey } from '../../../src/providers/vault/transit.js';
import { captureIo, rejectionOf, type CapturedIo } from '../helpers/index.js';
import { FakeTransit, fakeFailureOf } from '../providers/vault/fake-transit.js';

const SECRET = 'transit-cli-s3cret';
const binding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };
const BIND = ['--namespace', 'team-a', '--name', 'db', '--secret-key', 'password'];

describe('secretsync encrypt / reencrypt --transit', () => {
  let vault: FakeTransit;
  let connected: VaultConnectionOptions[];
  let kmsUsed: boolean;

  beforeEach(() => {
    vault = new FakeTransit();
    vault.createKey('transit', 'secretsync');
    vault.createKey('team-a/transit', 'app');
    vault.createKey('transit', 'plain', false);
    connected = [];
    kmsUsed = false;
  });

  const decrypt = (text: string, mount = 'transit', key = 'secretsync') =>
    new TransitDecryptor(new TransitKey(vault, { mount, key }, fakeFailureOf)).decrypt(text, binding);

  async function cli(args: string[], stdin = ''): Promise<CapturedIo & { code: number }> {
    const io = captureIo(stdin);
    const program = new Command('secretsync')
      .exitOverride()
      .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
    registerEncryptCommands(program, io, {
      kms: () => {
        kmsUsed = true;
        throw new Error('KMS must not be used with --transit');
      },
      vault: async (options) => {
        connected.push(options);
        return { api: vault, failureOf: fakeFailureOf };
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
    expect(io.errLines.join('\n')).to.not.include(SECRET);
    expect(io.outLines.join('\n')).to.not.include(SECRET);
    return Object.assign(io, { code });
  }

  it('prints a transit ciphertext of stdin that decrypts where it is bound, never asking KMS', async () => {
    const r = await cli(['encrypt', '--transit', '--key', 'secretsync', ...BIND], `${SECRET}\n`);
    expect(r.code, r.errLines.join('\n')).to.equal(0);
    expect(parseTransitCiphertext(r.outLines[0] ?? '')).to.include({ scope: 'strict', key: 'secretsync' });
    expect(await decrypt(r.outLines[0] ?? '')).to.equal(SECRET);
    expect(kmsUsed).to.equal(false);
    expect(vault.count('encrypt')).to.equal(1);
  });

  it('passes the Vault flags to the connection and uses --mount', async () => {
    const r = await cli(
      [
        'encrypt',
        '--transit',
        '--key',
        'app',
        '--mount',
        'team-a/transit',
        '--vault-addr',
        'https://vault.example:8200',
        '--vault-namespace',
        'tenant-1',
        '--vault-cacert',
        '/etc/ca.pem',
        ...BIND,
      ],
      SECRET,
    );
    expect(r.code, r.errLines.join('\n')).to.equal(0);
    expect(connected[0]).to.include({
      vaultAddr: 'https://vault.example:8200',
      vaultNamespace: 'tenant-1',
      vaultCacert: '/etc/ca.pem',
      mount: 'team-a/transit',
    });
    expect(await decrypt(r.outLines[0] ?? '', 'team-a/transit', 'app')).to.equal(SECRET);
  });

  it('writes a whole ManagedSecret with --output yaml, naming store "vault" by default', async () => {
    const r = await cli(['encrypt', '--transit', '--key', 'secretsync', ...BIND, '--output', 'yaml'], SECRET);
    expect(r.code, r.errLines.join('\n')).to.equal(0);
    const ms = parse(r.outLines.join('\n')) as ManagedSecret;
    expect(ms.spec.storeRef).to.deep.equal({ name: 'vault' });
    expect(ms.metadata).to.include({ name: 'db', namespace: 'team-a' });
    expect(await decrypt(ms.spec.data?.[0]?.ciphertext ?? '')).to.equal(SECRET);
  });

  it('refuses a key without derivation before sending the value', async () => {
    const r = await cli(['encrypt', '--transit', '--key', 'plain', ...BIND], SECRET);
    expect(r.code).to.equal(1);
    expect(r.errLines.join('\n')).to.include('without key derivation').and.include('derived=true');
    expect(vault.count('encrypt')).to.equal(0);
  });

  it('refuses KMS flags with --transit, Vault flags without it, and bad key names in command-line words', async () => {
    const withRegion = await cli(['encrypt', '--transit', '--key', 'secretsync', ...BIND, '--region', 'x'], SECRET);
    expect(withRegion.errLines.join('\n')).to.include('--region and --endpoint are for AWS KMS');
    const noTransit = await cli(['encrypt', '--key', 'k', ...BIND, '--vault-addr', 'http://v'], SECRET);
    expect(noTransit.errLines.join('\n')).to.include('--vault-addr needs --transit');
    const badKey = await cli(['encrypt', '--transit', '--key', '../sys', ...BIND], SECRET);
    expect(badKey.errLines.join('\n')).to.include('--key must be a transit key name');
    expect(kmsUsed).to.equal(false);
    expect(vault.count('encrypt')).to.equal(0);
  });

  it('refuses a value given as an argument without repeating it', async () => {
    const r = await cli(['encrypt', '--transit', '--key', 'secretsync', ...BIND, SECRET]);
    expect(r.code).to.equal(1);
    expect(r.errLines.join('\n')).to.include('values are read only from stdin');
  });

  it('reencrypt --transit rewraps lines and ManagedSecret YAML to the newest key version', async () => {
    const made = await cli(['encrypt', '--transit', '--key', 'secretsync', ...BIND], SECRET);
    const yaml = await cli(['encrypt', '--transit', '--key', 'secretsync', ...BIND, '--output', 'yaml'], SECRET);
    vault.rotate('transit', 'secretsync');
    const lines = await cli(
      ['reencrypt', '--transit', '--key', 'secretsync', ...BIND, '--no-progress'],
      `${made.outLines[0]}\n\n`,
    );
    expect(lines.code, lines.errLines.join('\n')).to.equal(0);
    expect(parseTransitCiphertext(lines.outLines[0] ?? '').keyVersion).to.equal(2);
    expect(await decrypt(lines.outLines[0] ?? '')).to.equal(SECRET);

    const fromYaml = await cli(
      ['reencrypt', '--transit', '--key', 'secretsync', '--input', 'yaml', '--no-progress'],
      yaml.outLines.join('\n'),
    );
    expect(fromYaml.code, fromYaml.errLines.join('\n')).to.equal(0);
    const ms = parse(fromYaml.outLines.join('\n')) as ManagedSecret;
    const ciphertext = ms.spec.data?.[0]?.ciphertext ?? '';
    expect(parseTransitCiphertext(ciphertext).keyVersion).to.equal(2);
    expect(await decrypt(ciphertext)).to.equal(SECRET);
    expect(vault.count('rewrap')).to.equal(2);
  });

  it('reencrypt --transit names the line of a ciphertext made for another binding', async () => {
    const made = await cli(['encrypt', '--transit', '--key', 'secretsync', ...BIND], SECRET);
    const r = await cli(
      [
        'reencrypt',
        '--transit',
        '--key',
        'secretsync',
        '--namespace',
        'team-b',
        '--name',
        'db',
        '--secret-key',
        'password',
        '--no-progress',
      ],
      `${made.outLines[0]}\n`,
    );
    expect(r.code).to.equal(1);
    expect(r.errLines.join('\n')).to.include('line 1').and.include('Vault refused to rewrap it');
  });

  describe('the Vault connection (the vault CLI environment)', () => {
    const files = (map: Record<string, string>) => ({
      readFile: async (path: string) => {
        const text = map[path];
        if (text === undefined) throw new Error(`ENOENT ${path}`);
        return text;
      },
      home: () => '/home/me',
    });

    it('needs an address and a token, and says where they come from', async () => {
      const noAddr = await rejectionOf(vaultConnection({}, { env: { VAULT_TOKEN: 't' }, ...files({}) }));
      expect(noAddr.message).to.include('VAULT_ADDR');
      const noToken = await rejectionOf(vaultConnection({}, { env: { VAULT_ADDR: 'http://v:8200' }, ...files({}) }));
      expect(noToken.message).to.include('VAULT_TOKEN').and.include('vault login');
      const badAddr = await rejectionOf(
        vaultConnection({ vaultAddr: 'ftp://v' }, { env: { VAULT_TOKEN: 't' }, ...files({}) }),
      );
      expect(badAddr.message).to.include('http:// or https://');
    });

    it('takes the token from --vault-token-file, VAULT_TOKEN or ~/.vault-token, and never quotes it', async () => {
      await vaultConnection({}, { env: { VAULT_ADDR: 'http://v' }, ...files({ '/home/me/.vault-token': 'hvs.x\n' }) });
      await vaultConnection({ vaultTokenFile: '/t' }, { env: { VAULT_ADDR: 'http://v' }, ...files({ '/t': 'hvs.y' }) });
      const badFile = await rejectionOf(
        vaultConnection({ vaultTokenFile: '/t' }, { env: { VAULT_ADDR: 'http://v' }, ...files({ '/t': 'a\nb' }) }),
      );
      expect(badFile.message).to.include('--vault-token-file').and.not.include('a\nb');
      const badCa = await rejectionOf(
        vaultConnection({ vaultCacert: '/ca' }, { env: { VAULT_ADDR: 'https://v', VAULT_TOKEN: 't' }, ...files({}) }),
      );
      expect(badCa.message).to.include('VAULT_CACERT');
    });
  });
});
