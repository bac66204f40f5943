// The `secretsync store` CLI reading its master key from a Secret in a real
// cluster through a kubeconfig, as an operator's user would.
import { CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type CliIo } from '../../../src/cli/main.js';
import { sharedCluster, uniqueName } from '../env.js';

interface Run {
  code: number;
  out: string[];
  err: string[];
}

async function cli(args: string[], stdin = ''): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), readStdin: async () => Buffer.from(stdin) };
  const code = await main(['node', 'secretsync', 'store', ...args], io);
  return { code, out, err };
}

describe('secretsync store with a master key in a Kubernetes Secret', () => {
  const value = `pw-${randomBytes(8).toString('hex')}`;
  const masterKey = randomBytes(32);
  let namespace: string;
  let tmp: string;
  let dir: string;
  let fromSecret: string[];

  before(async () => {
    const core = sharedCluster().kubeConfig().makeApiClient(CoreV1Api);
    namespace = uniqueName('local-cli');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'store-key' },
        // Raw bytes under the default key, base64 text under another: both forms a person might store.
        data: {
          'master-key': masterKey.toString('base64'),
          'as-text': Buffer.from(masterKey.toString('base64')).toString('base64'),
        },
      },
    });
    tmp = await mkdtemp(join(tmpdir(), 'secretsync-local-cli-'));
    dir = join(tmp, 'store');
    fromSecret = [
      '--dir',
      dir,
      '--kubeconfig',
      sharedCluster().kubeconfigPath,
      '--master-key-secret',
      `${namespace}/store-key`,
    ];
  });

  after(async () => {
    await rm(tmp, { recursive: true, force: true });
    await sharedCluster()
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => undefined);
  });

  it('puts from stdin and gets a property back', async () => {
    const put = await cli(['put', 'db/prod', ...fromSecret], JSON.stringify({ user: 'app', password: value }));
    expect(put.err).to.deep.equal([]);
    expect(put.code).to.equal(0);
    expect(put.out).to.deep.equal(['stored db/prod version 1']);

    const get = await cli(['get', 'db/prod', '--property', 'password', ...fromSecret]);
    expect(get.code, get.err.join('\n')).to.equal(0);
    expect(get.out).to.deep.equal([value]);

    for (const f of await readdir(dir)) expect(await readFile(join(dir, f), 'utf8')).to.not.include(value);
  });

  it('the same key from another Secret key (base64 text) or a file opens the same store', async () => {
    const viaText = await cli([
      'get',
      'db/prod',
      '--property',
      'user',
      ...fromSecret,
      '--master-key-secret-key',
      'as-text',
    ]);
    expect(viaText.code, viaText.err.join('\n')).to.equal(0);
    expect(viaText.out).to.deep.equal(['app']);

    const keyFile = join(tmp, 'master.key');
    await writeFile(keyFile, masterKey.toString('hex'), { mode: 0o600 });
    const viaFile = await cli(['get', 'db/prod', '--property', 'password', '--dir', dir, '--master-key-file', keyFile]);
    expect(viaFile.out).to.deep.equal([value]);
  });

  it('a missing Secret, a missing key in it, or a namespace without it fail with one clear line', async () => {
    const base = ['list', '--dir', dir, '--kubeconfig', sharedCluster().kubeconfigPath];
    const cases: [string[], string][] = [
      [
        ['--master-key-secret', `${namespace}/no-such-secret`],
        `secretsync: Secret ${namespace}/no-such-secret not found`,
      ],
      [
        ['--master-key-secret', `${namespace}/store-key`, '--master-key-secret-key', 'nope'],
        `secretsync: Secret ${namespace}/store-key has no key "nope"`,
      ],
      [['--master-key-secret', 'default/store-key'], 'secretsync: Secret default/store-key not found'],
    ];
    for (const [args, message] of cases) {
      const r = await cli([...base, ...args]);
      expect(r.code).to.not.equal(0);
      expect(r.err).to.deep.equal([message]);
      expect(r.out).to.deep.equal([]);
    }
  });
});
