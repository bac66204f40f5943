// `secretsync encrypt` and `secretsync reencrypt`: KMS (or, with --transit,
// Vault transit) ciphertexts that are safe to commit to Git. Plaintext comes
// only from stdin and never leaves the process except to KMS (direct mode) or
// Vault (transit), or not at all (envelope mode).
import type { KMSClientConfig } from '@aws-sdk/client-kms';
import { Command, Option } from 'commander';
import { isMap, isSeq, parseAllDocuments, stringify, type Document } from 'yaml';
import { API_VERSION, type CiphertextScope, type ManagedSecret } from '../../api/types.js';
import { SCOPES } from '../../crypto/ciphertext.js';
import type { KmsEncryptor } from '../../providers/aws-kms/encryptor.js';
import type { KmsApi } from '../../providers/aws-kms/kms-api.js';
import type { CiphertextBinding } from '../../providers/provider.js';
import {
  DEFAULT_TRANSIT_STORE_NAME,
  defaultVaultDeps,
  refuseVaultFlagsWithoutTransit,
  transitKeyFor,
  withTransitOptions,
  type TransitCliOptions,
  type VaultDeps,
} from './encrypt-transit.js';
import type { CliIo } from '../main.js';
import { addExamples } from '../examples.js';
import { createProgress } from '../progress.js';

/** How the commands reach KMS (and Vault, with --transit); tests substitute a fake. */
export interface EncryptDeps {
  kms(options: { region?: string; endpoint?: string }): KmsApi;
  /** Default: the `vault` CLI's configuration (flags, VAULT_ADDR, VAULT_TOKEN, …). */
  vault?: VaultDeps;
}

/**
 * The SDK client with the standard AWS configuration: region, endpoint and
 * credentials from the flags or else AWS_REGION, AWS_ENDPOINT_URL(_KMS),
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE, SSO,
 * web identity, instance and container roles (the SDK's default chain).
 */
export const sdkEncryptDeps: EncryptDeps = {
  kms({ region, endpoint }) {
    // The SDK loads on first use: every other command (`run` above all) starts without it.
    let loaded: Promise<KmsApi> | undefined;
    let client: KmsApi | undefined;
    const api = (): Promise<KmsApi> =>
      (loaded ??= Promise.all([import('@aws-sdk/client-kms'), import('../../providers/aws-kms/kms-api.js')]).then(
        ([{ KMSClient }, { sdkKmsApi }]) => {
          const config: KMSClientConfig = {};
          const effectiveRegion = region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
          if (effectiveRegion) config.region = effectiveRegion;
          if (endpoint) config.endpoint = endpoint;
          client = sdkKmsApi(new KMSClient(config));
          return client;
        },
      ));
    return {
      decrypt: async (req) => (await api()).decrypt(req),
      encrypt: async (req) => (await api()).encrypt(req),
      generateDataKey: async (req) => (await api()).generateDataKey(req),
      reEncrypt: async (req) => (await api()).reEncrypt(req),
      ping: async () => (await api()).ping(),
      close: () => client?.close(),
    };
  },
};

/** The encryptor module pulls in the KMS SDK, so it is loaded by the commands that use it. */
const loadEncryptor = async (kms: KmsApi): Promise<KmsEncryptor> =>
  new (await import('../../providers/aws-kms/encryptor.js')).KmsEncryptor(kms);

export const DEFAULT_STORE_NAME = 'kms';

interface AwsOptions extends TransitCliOptions {
  key: string;
  region?: string;
  endpoint?: string;
  namespace?: string;
  name?: string;
  secretKey?: string;
}

interface EncryptCliOptions extends AwsOptions {
  scope: CiphertextScope;
  output: 'text' | 'yaml';
  store?: string;
  raw?: boolean;
}

/** Re-wraps one ciphertext used at `binding` (KMS: under --key; transit: to the key's newest version). */
type Rewrap = (ciphertext: string, binding: Partial<CiphertextBinding>) => Promise<string>;

interface ReencryptCliOptions extends AwsOptions {
  input: 'lines' | 'yaml';
  progress: boolean;
}

/** Called after each ciphertext: how many are done of how many. */
type Tick = (done: number, total: number) => void;

export function registerEncryptCommands(program: Command, io: CliIo, deps: EncryptDeps = sdkEncryptDeps): void {
  const vault = deps.vault ?? defaultVaultDeps;
  const encrypt = withAwsOptions(program.command('encrypt'))
    .summary('encrypt a value from stdin with AWS KMS or Vault transit into a ciphertext that is safe to commit')
    .description(
      'encrypt the value on stdin (never an argument) with AWS KMS (or Vault transit with --transit) into a ' +
        'secretsync ciphertext, bound to where it may be used: --scope strict (the default) to one key of one ' +
        'ManagedSecret, namespace to one namespace, cluster to anywhere a store with this key is used. One trailing ' +
        'newline on stdin is dropped unless --raw.',
    )
    .addOption(new Option('--scope <scope>', 'where the ciphertext may be used').choices(SCOPES).default('strict'))
    .addOption(
      new Option('--output <format>', 'text: the ciphertext; yaml: a whole ManagedSecret')
        .choices(['text', 'yaml'])
        .default('text'),
    )
    .option(
      '--store <name>',
      `spec.storeRef.name of the ManagedSecret with --output yaml (default: ${DEFAULT_STORE_NAME}, ${DEFAULT_TRANSIT_STORE_NAME} with --transit)`,
    )
    .option('--raw', 'encrypt stdin byte for byte (keep a trailing newline)')
    .allowExcessArguments()
    .allowUnknownOption()
    .action(async (opts: EncryptCliOptions, cmd: Command) => {
      refuseExtraArguments(cmd, 'encrypt');
      refuseVaultFlagsWithoutTransit(opts);
      const binding = bindingFromFlags(opts);
      requireBinding(opts.scope, binding, opts.output === 'yaml');
      const transitKey = opts.transit ? await transitKeyFor(opts, vault) : undefined;
      const value = plaintextFrom(await io.readStdin(), opts.raw === true);
      let ciphertext: string;
      if (transitKey) {
        try {
          ciphertext = await transitKey.encrypt(value, opts.scope, binding);
        } finally {
          value.fill(0);
        }
      } else {
        const kms = deps.kms(opts);
        try {
          ciphertext = await (await loadEncryptor(kms)).encrypt(value, { keyId: opts.key, scope: opts.scope, binding });
        } catch (err) {
          throw friendly(err);
        } finally {
          value.fill(0);
          kms.close();
        }
      }
      if (opts.output === 'text') {
        io.out(ciphertext);
        return;
      }
      const manifest: ManagedSecret = {
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        metadata: { name: binding.managedSecret ?? '', namespace: binding.namespace ?? '' },
        spec: {
          storeRef: { name: opts.store ?? (opts.transit ? DEFAULT_TRANSIT_STORE_NAME : DEFAULT_STORE_NAME) },
          data: [{ secretKey: binding.secretKey ?? '', ciphertext }],
        },
      };
      io.out(stringify(manifest, { lineWidth: 0 }).trimEnd());
    });
  addExamples(encrypt, [
    {
      command:
        'secretsync encrypt --key alias/team-a --namespace team-a --name db --secret-key password < password.txt',
      explain: 'a ciphertext only team-a/db may use, as its Secret key "password" (one trailing newline is dropped)',
    },
    {
      command:
        'printf \'%s\' "$PASSWORD" | secretsync encrypt --key alias/team-a --namespace team-a --name db --secret-key password --output yaml > db.managedsecret.yaml',
      explain: 'a whole ManagedSecret to commit, reading spec.storeRef "kms" (--store to change it)',
    },
    {
      command:
        'secretsync encrypt --key alias/shared --scope namespace --namespace team-a --region eu-west-1 < token.txt',
      explain: 'a ciphertext any ManagedSecret of team-a may use, with a key in eu-west-1',
    },
    {
      command:
        'secretsync encrypt --transit --key secretsync --namespace team-a --name db --secret-key password < password.txt',
      explain:
        'the same with Vault transit key "secretsync" (derived=true) at $VAULT_ADDR, token from $VAULT_TOKEN or ~/.vault-token',
    },
  ]);

  const reencrypt = withAwsOptions(program.command('reencrypt'))
    .summary("re-wrap ciphertexts from stdin under another KMS key, or a transit key's newest version")
    .description(
      'read ciphertexts from stdin (one per line, or ManagedSecret YAML with --input yaml) and re-wrap each under ' +
        '--key, keeping its scope and binding, printing the same shape. Line input takes the binding from ' +
        '--namespace, --name and --secret-key; YAML input from each ManagedSecret and data item. Needs kms:Decrypt ' +
        'on the old key and kms:Encrypt (envelope) or kms:ReEncrypt* (direct) on both. With --transit, Vault rewraps ' +
        'each to the newest version of transit key --key (the value never leaves Vault; needs "update" on ' +
        '<mount>/rewrap/<key>).',
    )
    .addOption(
      new Option('--input <format>', 'lines: one ciphertext per line; yaml: ManagedSecret manifests')
        .choices(['lines', 'yaml'])
        .default('lines'),
    )
    .option(
      '--no-progress',
      'no progress on stderr (shown by default: a bar on a terminal, a line every 5 s otherwise)',
    )
    .allowExcessArguments()
    .allowUnknownOption()
    .action(async (opts: ReencryptCliOptions, cmd: Command) => {
      refuseExtraArguments(cmd, 'reencrypt');
      refuseVaultFlagsWithoutTransit(opts);
      const input = utf8(await io.readStdin());
      let rewrap: Rewrap;
      let close: () => void;
      if (opts.transit) {
        const transitKey = await transitKeyFor(opts, vault);
        rewrap = (ciphertext, binding) => transitKey.rewrap(ciphertext, binding);
        close = () => undefined;
      } else {
        const encryptor = await loadEncryptor(deps.kms(opts));
        rewrap = (ciphertext, binding) => encryptor.reencrypt(ciphertext, binding, opts.key);
        close = () => encryptor.close();
      }
      const progress = createProgress(opts.progress ? io.progressStream : undefined, 'reencrypt');
      const tick: Tick = (done, total) => progress.update('ciphertexts re-encrypted', done, total);
      try {
        const output =
          opts.input === 'yaml'
            ? await reencryptYaml(input, opts, rewrap, tick)
            : await reencryptLines(input, opts, rewrap, tick);
        progress.end();
        io.out(output.replace(/\n$/, ''));
      } catch (err) {
        progress.end();
        throw friendly(err);
      } finally {
        close();
      }
    });
  addExamples(reencrypt, [
    {
      command: 'secretsync reencrypt --key alias/team-a-2025 --input yaml < db.managedsecret.yaml > db.new.yaml',
      explain: 'move every ciphertext of ManagedSecret manifests to a new key (binding from each manifest)',
    },
    {
      command:
        'secretsync reencrypt --key alias/team-a-2025 --namespace team-a --name db --secret-key password < ciphertexts.txt',
      explain: 'ciphertexts one per line, all made for team-a/db key "password"',
    },
    {
      command: 'secretsync reencrypt --transit --key secretsync --input yaml < db.managedsecret.yaml > db.new.yaml',
      explain:
        'after `vault write -f transit/keys/secretsync/rotate`: rewrap transit ciphertexts to the newest key version',
    },
  ]);
}

function withAwsOptions(cmd: Command): Command {
  const aws = cmd
    .requiredOption(
      '--key <key>',
      'KMS key: key id, key ARN, alias/NAME or alias ARN (with --transit: transit key name)',
    )
    .option('--namespace <namespace>', 'namespace of the ManagedSecret that will use the value')
    .option('--name <name>', 'name of that ManagedSecret')
    .option('--secret-key <key>', 'key of the value in the Secret it makes')
    .option('--region <region>', 'AWS region (default: $AWS_REGION, then the AWS config)')
    .option('--endpoint <url>', 'KMS endpoint URL (default: $AWS_ENDPOINT_URL_KMS or $AWS_ENDPOINT_URL, then AWS)');
  return withTransitOptions(aws);
}

async function reencryptLines(input: string, opts: ReencryptCliOptions, rewrap: Rewrap, tick: Tick): Promise<string> {
  const binding = bindingFromFlags(opts);
  const lines = input.split('\n');
  const total = lines.filter((l) => l.trim() !== '').length;
  const out: string[] = [];
  let count = 0;
  for (const [index, line] of lines.entries()) {
    const text = line.trim();
    if (text === '') {
      out.push(line);
      continue;
    }
    count++;
    try {
      out.push(await rewrap(text, binding));
    } catch (err) {
      throw new Error(`line ${index + 1}: ${messageOf(err)}${bindingHint(err)}`, { cause: err });
    }
    tick(count, total);
  }
  if (count === 0) throw new Error('no ciphertexts on stdin');
  return out.join('\n');
}

async function reencryptYaml(input: string, opts: ReencryptCliOptions, rewrap: Rewrap, tick: Tick): Promise<string> {
  const docs = parseAllDocuments(input);
  if (!Array.isArray(docs)) throw new Error('stdin is not YAML documents');
  const total = countYamlCiphertexts(docs);
  let count = 0;
  for (const [docIndex, doc] of docs.entries()) {
    if (doc.errors.length > 0) throw new Error(`YAML document ${docIndex + 1}: ${doc.errors[0]?.message ?? 'invalid'}`);
    if (doc.get('kind') !== 'ManagedSecret') continue;
    const name = stringAt(doc, ['metadata', 'name']);
    const namespace = stringAt(doc, ['metadata', 'namespace']) ?? opts.namespace;
    const what = `ManagedSecret ${namespace ?? '?'}/${name ?? '?'}`;
    const data = doc.getIn(['spec', 'data']);
    if (data === undefined || data === null) continue;
    if (!isSeq(data)) throw new Error(`${what}: spec.data is not a list`);
    for (const [i, item] of data.items.entries()) {
      if (!isMap(item)) continue;
      const ciphertext = item.get('ciphertext');
      if (ciphertext === undefined) continue;
      const secretKey = item.get('secretKey');
      if (typeof ciphertext !== 'string' || typeof secretKey !== 'string') {
        throw new Error(`${what}: spec.data[${i}] needs string secretKey and ciphertext`);
      }
      const binding = { namespace, managedSecret: name, secretKey };
      try {
        item.set('ciphertext', await rewrap(ciphertext, binding));
      } catch (err) {
        throw new Error(`${what}, secret key "${secretKey}": ${messageOf(err)}`, { cause: err });
      }
      count++;
      tick(count, total);
    }
  }
  if (count === 0) throw new Error('no ManagedSecret with data[].ciphertext on stdin');
  return docs.map((doc: Document) => doc.toString({ lineWidth: 0 })).join('');
}

/** The data items the loop above re-encrypts, counted first so that progress has a total. */
function countYamlCiphertexts(docs: Document[]): number {
  let total = 0;
  for (const doc of docs) {
    if (doc.errors.length > 0 || doc.get('kind') !== 'ManagedSecret') continue;
    const data = doc.getIn(['spec', 'data']);
    if (!isSeq(data)) continue;
    for (const item of data.items) if (isMap(item) && item.get('ciphertext') !== undefined) total++;
  }
  return total;
}

function stringAt(doc: Document, path: string[]): string | undefined {
  const value = doc.getIn(path);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function bindingFromFlags(opts: AwsOptions): Partial<CiphertextBinding> {
  const binding: Partial<CiphertextBinding> = {};
  if (opts.namespace !== undefined) {
    if (!DNS_LABEL.test(opts.namespace)) throw new Error('--namespace must be a Kubernetes namespace name');
    binding.namespace = opts.namespace;
  }
  if (opts.name !== undefined) {
    if (!DNS_SUBDOMAIN.test(opts.name) || opts.name.length > 253) {
      throw new Error('--name must be a Kubernetes object name (lower-case DNS subdomain)');
    }
    binding.managedSecret = opts.name;
  }
  if (opts.secretKey !== undefined) {
    if (!SECRET_KEY.test(opts.secretKey) || opts.secretKey.length > 253) {
      throw new Error('--secret-key must be a valid Secret key (letters, digits, "-", "_" and ".")');
    }
    binding.secretKey = opts.secretKey;
  }
  return binding;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

function requireBinding(scope: CiphertextScope, binding: Partial<CiphertextBinding>, manifest: boolean): void {
  const missing: string[] = [];
  const needAll = manifest || scope === 'strict';
  if ((needAll || scope === 'namespace') && !binding.namespace) missing.push('--namespace');
  if (needAll && !binding.managedSecret) missing.push('--name');
  if (needAll && !binding.secretKey) missing.push('--secret-key');
  if (missing.length > 0) {
    const why = manifest ? 'with --output yaml' : `for --scope ${scope}`;
    throw new Error(`${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} required ${why}`);
  }
}

function plaintextFrom(input: Buffer, raw: boolean): Buffer {
  const text = utf8(input);
  // `echo value | secretsync encrypt …` should encrypt "value", as `$(…)` would.
  const value = raw ? input : Buffer.from(text.replace(/\r?\n$/, ''), 'utf8');
  if (value.length === 0) throw new Error('no value on stdin: pipe the value to encrypt into the command');
  return value;
}

function utf8(input: Buffer): string {
  const text = input.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(input)) {
    throw new Error('stdin is not UTF-8 text (binary values are not supported; base64-encode them first)');
  }
  return text;
}

/**
 * Anything besides the known options is refused, and only option names are
 * repeated back: a person who typed the value as an argument must not find it
 * in an error message or a CI log.
 */
function refuseExtraArguments(cmd: Command, name: string): void {
  if (cmd.args.length === 0) return;
  const options = cmd.args.filter((a) => a.startsWith('-')).map((a) => a.split('=')[0]);
  const what = options.length > 0 ? `unknown option ${options.join(', ')}` : 'unexpected arguments';
  throw new Error(`${name}: ${what}; values are read only from stdin, never from the command line`);
}

function bindingHint(err: unknown): string {
  return /needs a .* to bind to|must be the ones/.test(messageOf(err))
    ? ' (give the --namespace, --name and --secret-key it was made for, or use --input yaml)'
    : '';
}

function friendly(err: unknown): Error {
  const message = messageOf(err);
  if (/Region is missing/i.test(message)) {
    return new Error('no AWS region: give --region or set AWS_REGION', { cause: err });
  }
  return err instanceof Error ? err : new Error(message);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
