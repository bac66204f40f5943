// `secretsync store …`: manage entries of a local store directory by hand.
// Values travel only through stdin or a file, and are printed only by `get`.
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { parseMasterKey } from '../../crypto/aead.js';
import { DEFAULT_MASTER_KEY_KEY } from '../../providers/local/index.js';
import { LocalStore } from '../../providers/local/store.js';
import type { Properties } from '../../providers/provider.js';
import type { CliIo } from '../main.js';
import { addExamples, type Example } from '../examples.js';
import { KubeApiError, KubeClient } from '../../kube/client.js';
import { loadKubeConfig } from '../../kube/config.js';

interface CommonOptions {
  dir?: string;
  masterKeyFile?: string;
  masterKeySecret?: string;
  masterKeySecretKey: string;
  kubeconfig?: string;
}

export function registerStoreCommands(program: Command, io: CliIo): void {
  const store = program
    .command('store')
    .description('manage entries of a local store (values are read from stdin or a file, never from arguments)');
  addExamples(store, [
    {
      command: 'secretsync store list --dir ./store --master-key-file master.key',
      explain: 'names and versions of every entry (the directory and key can also come from the environment)',
    },
    { command: 'secretsync store put --help', explain: 'how values go in' },
  ]);

  withCommonOptions(store.command('put'))
    .summary('add a version of an entry (values from stdin or --from-file only)')
    .description(
      'add a version of an entry from stdin or --from-file: a JSON object of string properties, or with --property one raw value (a trailing newline on stdin is dropped; a file is taken byte for byte)',
    )
    .argument('<name>', 'entry name, e.g. db/prod')
    .option('--from-file <path>', 'read the input from this file instead of stdin')
    .option('--property <property>', 'the input is the raw value of this property, laid over the latest version')
    .option('--keep-versions <n>', 'keep at most this many versions (default 10)')
    // Checked by hand below so that a value typed as an argument is refused without being echoed.
    .allowExcessArguments()
    .allowUnknownOption()
    .action(async (name: string, opts: CommonOptions & PutOptions, cmd: Command) => {
      refuseExtraArguments(cmd);
      const keepVersions = opts.keepVersions === undefined ? undefined : parseKeepVersions(opts.keepVersions);
      const input = await readInput(io, opts.fromFile);
      const localStore = await openStore(opts);
      try {
        const { version } =
          opts.property === undefined
            ? await localStore.put(name, parsePropertiesJson(input), { keepVersions })
            : await localStore.patch(
                name,
                { [opts.property]: rawValue(input, opts.fromFile === undefined) },
                {
                  keepVersions,
                },
              );
        io.out(`stored ${name} version ${version}`);
      } finally {
        localStore.close();
      }
    });

  withCommonOptions(store.command('get'))
    .description('print one property, or all properties as JSON (prints secret values to stdout)')
    .argument('<name>', 'entry name')
    .option('--version <version>', 'a version number (default: the latest)')
    .option('--property <property>', 'print only this property')
    .action(async (name: string, opts: CommonOptions & { version?: string; property?: string }) => {
      await withStore(opts, async (localStore) => {
        const entry = await localStore.get(name, opts.version);
        if (opts.property === undefined) {
          io.out(JSON.stringify(entry.properties, null, 2));
          return;
        }
        const value = Object.hasOwn(entry.properties, opts.property) ? entry.properties[opts.property] : undefined;
        if (value === undefined) {
          throw new Error(`entry "${name}" version ${entry.version} has no property "${opts.property}"`);
        }
        io.out(value);
      });
    });

  withCommonOptions(store.command('list'))
    .description('list entries (names and versions, never values)')
    .option('--prefix <prefix>', 'only entries whose name starts with this')
    .action(async (opts: CommonOptions & { prefix?: string }) => {
      await withStore(opts, async (localStore) => {
        const rows = (await localStore.list(opts.prefix ?? '')).map((e) => [
          e.name,
          String(e.latestVersion),
          String(e.versions),
          e.updatedAt,
        ]);
        for (const line of table(['NAME', 'VERSION', 'VERSIONS', 'UPDATED'], rows)) io.out(line);
      });
    });

  withCommonOptions(store.command('delete'))
    .description('delete an entry and all its versions')
    .argument('<name>', 'entry name')
    .action(async (name: string, opts: CommonOptions) => {
      await withStore(opts, async (localStore) => {
        if (!(await localStore.delete(name))) throw new Error(`entry "${name}" not found`);
        io.out(`deleted ${name}`);
      });
    });

  withCommonOptions(store.command('reseal'))
    .summary('rewrite entries in the current format and record them in the manifest')
    .description(
      'rewrite entries (all, or the NAMEs given) in the current format and record them in the store manifest: upgrades entries written before the manifest existed; with --accept, also takes entries that fail the rollback checks as they are now (an older copy put back on purpose, a removed manifest), after checking that every version still decrypts',
    )
    .argument('[names...]', 'entry names (default: every entry)')
    .option('--accept', 'accept entries that fail the rollback checks as they are on disk now')
    .action(async (names: string[], opts: CommonOptions & { accept?: boolean }) => {
      await withStore(opts, async (localStore) => {
        const options = { accept: opts.accept === true };
        const results =
          names.length === 0
            ? await localStore.resealAll(options)
            : await Promise.all(
                names.map((name) =>
                  localStore.reseal(name, options).catch((err: unknown) => ({
                    name,
                    error: err instanceof Error ? err : new Error(String(err)),
                  })),
                ),
              );
        let refused = 0;
        for (const r of results) {
          if ('error' in r) {
            refused++;
            io.err(`refused ${r.name}: ${r.error.message}`);
          } else if (r.outcome === 'current') {
            io.out(`current ${r.name} (generation ${r.generation})`);
          } else {
            io.out(
              `${r.outcome} ${r.name} (generation ${r.generation})${r.problem ? `, which had failed: ${r.problem}` : ''}`,
            );
          }
        }
        if (refused > 0)
          throw new Error(`${refused} of ${results.length} entries refused; nothing was changed for them`);
      });
    });

  withCommonOptions(store.command('history'))
    .description('list the versions of an entry (numbers and times, never values)')
    .argument('<name>', 'entry name')
    .action(async (name: string, opts: CommonOptions) => {
      await withStore(opts, async (localStore) => {
        const rows = (await localStore.history(name)).map((v) => [String(v.version), v.createdAt]);
        for (const line of table(['VERSION', 'CREATED'], rows)) io.out(line);
      });
    });

  for (const cmd of store.commands) addExamples(cmd, STORE_EXAMPLES[cmd.name()] ?? []);
}

const STORE_EXAMPLES: Record<string, Example[]> = {
  put: [
    {
      command: 'secretsync store put app/db --dir ./store --master-key-file master.key < db.json',
      explain: 'a new version of app/db from a JSON object of properties, e.g. {"username":"app","password":"…"}',
    },
    {
      command:
        'secretsync store put app/db --property password --from-file password.txt --dir ./store --master-key-file master.key',
      explain: 'replace one property, taken byte for byte from a file; the others are kept',
    },
    {
      command:
        'secretsync store put app/db --master-key-secret team-a/secretsync-master-key --keep-versions 5 < db.json',
      explain: 'master key from a Kubernetes Secret, store directory from $SECRETSYNC_STORE_DIR; keep 5 versions',
    },
  ],
  get: [
    {
      command: 'secretsync store get app/db --property password --dir ./store --master-key-file master.key',
      explain: 'print one property of the latest version (this prints the secret value)',
    },
    {
      command: 'secretsync store get app/db --version 2 --dir ./store --master-key-file master.key',
      explain: 'every property of version 2, as JSON',
    },
  ],
  list: [
    { command: 'secretsync store list --dir ./store --master-key-file master.key', explain: 'every entry' },
    {
      command: 'secretsync store list --prefix app/ --dir ./store --master-key-file master.key',
      explain: 'entries whose names start with app/',
    },
  ],
  delete: [
    {
      command: 'secretsync store delete app/db --dir ./store --master-key-file master.key',
      explain: 'delete app/db and all its versions',
    },
  ],
  reseal: [
    {
      command: 'secretsync store reseal --dir ./store --master-key-file master.key',
      explain: 'after an upgrade: every entry in the current format',
    },
    {
      command: 'secretsync store reseal app/db --accept --dir ./store --master-key-file master.key',
      explain: 'take app/db as it is on disk now (say, after putting an older copy back on purpose)',
    },
  ],
  history: [
    {
      command: 'secretsync store history app/db --dir ./store --master-key-file master.key',
      explain: 'version numbers and times of app/db (never values)',
    },
  ],
};

interface PutOptions {
  fromFile?: string;
  property?: string;
  keepVersions?: string;
}

function withCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--dir <path>', 'the store directory').env('SECRETSYNC_STORE_DIR'))
    .addOption(
      new Option('--master-key-file <path>', 'file holding the 32-byte master key (raw, base64 or hex)').env(
        'SECRETSYNC_MASTER_KEY_FILE',
      ),
    )
    .option('--master-key-secret <namespace/name>', 'read the master key from this Kubernetes Secret')
    .option('--master-key-secret-key <key>', 'key of the master key in that Secret', DEFAULT_MASTER_KEY_KEY)
    .option('--kubeconfig <path>', 'kubeconfig for --master-key-secret (default: $KUBECONFIG or ~/.kube/config)');
}

/**
 * Anything after NAME is refused, and only option names are repeated back: a
 * person who typed `put db/prod s3cret` must not find s3cret in an error log.
 */
function refuseExtraArguments(cmd: Command): void {
  const options = cmd.args.filter((a) => a.startsWith('-')).map((a) => a.split('=')[0]);
  const operands = cmd.args.filter((a) => !a.startsWith('-'));
  if (options.length === 0 && operands.length <= 1) return;
  const what = options.length > 0 ? `unknown option ${options.join(', ')}` : 'an unexpected argument after NAME';
  throw new Error(`put: ${what}; values are read only from stdin or --from-file, never from the command line`);
}

function parseKeepVersions(text: string): number {
  const n = /^[1-9][0-9]{0,5}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new Error('--keep-versions must be a whole number of at least 1');
  return n;
}

async function readInput(io: CliIo, fromFile: string | undefined): Promise<Buffer> {
  if (fromFile === undefined) return io.readStdin();
  try {
    return await readFile(fromFile);
  } catch (err) {
    throw new Error(`cannot read --from-file ${fromFile}: ${errorCode(err)}`);
  }
}

function utf8(input: Buffer): string {
  const text = input.toString('utf8');
  // Properties are strings; a lossy decode would store something other than what was given.
  if (!Buffer.from(text, 'utf8').equals(input)) {
    throw new Error('the input is not UTF-8 text (binary values are not supported; base64-encode them first)');
  }
  return text;
}

/** Never quotes the input back: JSON.parse's own message includes a piece of it. */
function parsePropertiesJson(input: Buffer): Properties {
  const text = utf8(input);
  if (text.trim() === '') throw new Error('no input: give a JSON object of string properties on stdin or --from-file');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('the input is not valid JSON (expected an object of string properties, or use --property P)');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('the input must be a JSON object of string properties');
  }
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string') throw new Error(`property "${k}" must be a string`);
  }
  return parsed as Properties;
}

function rawValue(input: Buffer, fromStdin: boolean): string {
  const text = utf8(input);
  // `echo value | secretsync store put …` should store "value", as `$(…)` would; files are kept exact.
  return fromStdin ? text.replace(/\r?\n$/, '') : text;
}

async function withStore(opts: CommonOptions, fn: (store: LocalStore) => Promise<void>): Promise<void> {
  const store = await openStore(opts);
  try {
    await fn(store);
  } finally {
    store.close();
  }
}

async function openStore(opts: CommonOptions): Promise<LocalStore> {
  if (!opts.dir) throw new Error('no store directory: give --dir or set SECRETSYNC_STORE_DIR');
  const masterKey = await loadMasterKey(opts);
  try {
    return new LocalStore(opts.dir, masterKey);
  } finally {
    masterKey.fill(0);
  }
}

async function loadMasterKey(opts: CommonOptions): Promise<Buffer> {
  if (opts.masterKeyFile !== undefined && opts.masterKeySecret !== undefined) {
    throw new Error('give either --master-key-file or --master-key-secret, not both');
  }
  let raw: Buffer;
  let source: string;
  if (opts.masterKeyFile !== undefined) {
    source = `master key file ${opts.masterKeyFile}`;
    try {
      raw = await readFile(opts.masterKeyFile);
    } catch (err) {
      throw new Error(`cannot read ${source}: ${errorCode(err)}`);
    }
  } else if (opts.masterKeySecret !== undefined) {
    source = `key "${opts.masterKeySecretKey}" of Secret ${opts.masterKeySecret}`;
    raw = await readSecretKey(opts.masterKeySecret, opts.masterKeySecretKey, opts.kubeconfig);
  } else {
    throw new Error(
      'no master key: give --master-key-file PATH (or set SECRETSYNC_MASTER_KEY_FILE) or --master-key-secret NAMESPACE/NAME',
    );
  }
  try {
    return parseMasterKey(raw);
  } catch {
    throw new Error(`${source}: master key must be 32 bytes (raw, base64 or hex)`);
  } finally {
    raw.fill(0);
  }
}

async function readSecretKey(ref: string, key: string, kubeconfig: string | undefined): Promise<Buffer> {
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(ref);
  const namespace = match?.[1];
  const name = match?.[3];
  if (!namespace || !name) throw new Error(`--master-key-secret must be NAMESPACE/NAME, got "${ref}"`);
  let client: KubeClient;
  try {
    client = new KubeClient(await loadKubeConfig(kubeconfig));
  } catch (err) {
    throw new Error(`cannot load kubeconfig ${kubeconfig ?? '(default)'}: ${err instanceof Error ? err.message : err}`);
  }
  let data: Record<string, string> | undefined;
  try {
    const secret = await client.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${namespace}/secrets/${name}`,
    );
    data = secret.data;
  } catch (err) {
    // The response body is never quoted: it is the API server's, and not ours to vouch for.
    if (err instanceof KubeApiError) {
      if (err.status === 404) throw new Error(`Secret ${namespace}/${name} not found`);
      if (err.status === 401 || err.status === 403) {
        throw new Error(`not allowed to read Secret ${namespace}/${name} (HTTP ${err.status})`);
      }
      throw new Error(`cannot read Secret ${namespace}/${name}: HTTP ${err.status}`);
    }
    throw new Error(`cannot read Secret ${namespace}/${name}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    client.close();
  }
  const encoded = data?.[key];
  if (encoded === undefined) throw new Error(`Secret ${namespace}/${name} has no key "${key}"`);
  return Buffer.from(encoded, 'base64');
}

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(err);
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
