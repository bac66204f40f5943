// `secretsync backup --out FILE`: the cluster's secretsync objects (and, if
// asked, the local store's entry files and the synced Secrets) in one
// encrypted, authenticated file. See src/backup/format.ts for the format.
// `--out s3://BUCKET/KEY` uploads the same bytes to S3 (src/backup/s3.ts).
// `--include-store` adds the secrets of IBM Cloud Secrets Manager stores'
// primary instances (src/backup/ibm-instance.ts), inside the encrypted payload.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { exportCluster } from '../../backup/export.js';
import { checkKeyFile, describeHeader, readHeader, sealBackup, type BackupKey } from '../../backup/format.js';
import {
  isS3Url,
  parseS3Url,
  s3Url,
  sdkBackupObjectStore,
  type BackupObjectStore,
  type S3Location,
} from '../../backup/s3.js';
import { exportIbmStores, parseStoreRef } from '../../backup/ibm-instance.js';
import { KubeClient } from '../../kube/client.js';
import { packageVersion } from '../../version.js';
import type { CliIo } from '../main.js';
import { addExamples } from '../examples.js';
import { createProgress } from '../progress.js';
import { sdkEncryptDeps, type EncryptDeps } from './encrypt.js';
import { allowedEndpointsOption } from './ibm.js';
import { loadKubeConfig } from '../../kube/config.js';

interface BackupOptions {
  out: string;
  kmsKey?: string;
  keyFile?: string;
  region?: string;
  endpoint?: string;
  kubeconfig?: string;
  includeLocalStore?: boolean;
  localStoreDir?: string;
  includeSynced?: boolean;
  includeStore: string[];
  allowedEndpoints: string[];
  force?: boolean;
  s3Region?: string;
  s3Endpoint?: string;
  operatorNamespace: string;
  progress: boolean;
}

/** --s3-region / --s3-endpoint, for --out or --in s3://BUCKET/KEY. */
export function withS3Options(cmd: Command): Command {
  return cmd
    .option('--s3-region <region>', 'AWS region of the bucket for s3:// (default: $AWS_REGION, then the AWS config)')
    .option(
      '--s3-endpoint <url>',
      'S3 endpoint URL for s3://, e.g. MinIO (path-style; default: $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL, then AWS)',
    );
}

/**
 * A signal aborted by SIGINT or SIGTERM while `work` runs (a CronJob's Pod is
 * sent SIGTERM when it is deleted or its deadline passes): the S3 call in
 * flight stops and the command says so, instead of dying mid-upload.
 */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => controller.abort(new Error(`interrupted by ${name}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Options both commands share: the cluster, and how to reach KMS. */
export function withClusterAndKmsOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config)').env('KUBECONFIG'),
    )
    .option('--key-file <path>', 'the backup key file (at least 32 random bytes; keep it apart from the backups)')
    .option('--region <region>', 'AWS region for KMS (default: $AWS_REGION, then the region in the key ARN)')
    .option('--endpoint <url>', 'KMS endpoint URL (default: $AWS_ENDPOINT_URL_KMS or $AWS_ENDPOINT_URL, then AWS)')
    .addOption(
      new Option(
        '--operator-namespace <ns>',
        "the operator's namespace, where ReplicationTargets' kubeconfig Secrets are (never backed up; restore notes missing ones)",
      )
        .env('SECRETSYNC_OPERATOR_NAMESPACE')
        .default(process.env.POD_NAMESPACE ?? 'secretsync-system'),
    );
}

export function registerBackupCommand(program: Command, io: CliIo, deps: EncryptDeps = sdkEncryptDeps): void {
  const backup = withS3Options(withClusterAndKmsOptions(program.command('backup')))
    .summary(
      'write every secretsync object (and optionally local store entries and synced Secrets) to an encrypted file',
    )
    .description(
      'export every SecretStore, ClusterSecretStore, ReplicationTarget and ManagedSecret (specs without cluster-assigned ' +
        'metadata) into one file encrypted with AES-256-GCM under a KMS-wrapped data key (--kms-key) or a key derived ' +
        'from a key file (--key-file). Its plaintext header (what, when, from where, which key) is authenticated too.',
    )
    .requiredOption(
      '--out <file>',
      'the backup file to write (mode 0600), or s3://BUCKET/KEY to upload it; an existing one is kept unless --force',
    )
    .option('--kms-key <key>', 'wrap the data key with this KMS key (key id, ARN, alias/NAME or alias ARN)')
    .option('--include-local-store', "add the local store's entry files (still encrypted by the store's master key)")
    .addOption(
      new Option('--local-store-dir <path>', 'the local store directory for --include-local-store').env(
        'SECRETSYNC_STORE_DIR',
      ),
    )
    .option(
      '--include-synced',
      'add a last-known-good copy of the Secrets secretsync wrote (label secretsync.io/managed=true), except those that are store credentials or ReplicationTarget kubeconfigs',
    )
    .option(
      '--include-store <KIND/NAMESPACE/NAME>',
      "add the secrets of an IBM Cloud Secrets Manager store's primary instance (values, encrypted with the rest): " +
        'SecretStore/NAMESPACE/NAME or ClusterSecretStore/NAME; repeatable',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .addOption(allowedEndpointsOption())
    .option('--force', 'overwrite --out if it exists (file or S3 object)')
    .option(
      '--no-progress',
      'no progress on stderr (shown by default: a bar on a terminal, a line every 5 s otherwise)',
    )
    .action(async (opts: BackupOptions) => {
      if ((opts.kmsKey === undefined) === (opts.keyFile === undefined)) {
        throw new Error('give exactly one of --kms-key KEY or --key-file PATH');
      }
      if (opts.includeLocalStore && opts.localStoreDir === undefined) {
        throw new Error('--include-local-store needs --local-store-dir (or SECRETSYNC_STORE_DIR)');
      }
      for (const ref of opts.includeStore) parseStoreRef(ref);
      const s3: S3Location | undefined = isS3Url(opts.out) ? parseS3Url(opts.out) : undefined;
      const bucket: BackupObjectStore | undefined = s3
        ? sdkBackupObjectStore({ region: opts.s3Region, endpoint: opts.s3Endpoint })
        : undefined;
      try {
        // Before any work: the file or object is not replaced unless asked (the write below checks again, atomically).
        if (!opts.force && s3 && bucket) {
          if ((await interruptible((signal) => bucket.exists(s3, signal))) === true) {
            throw new Error(`${s3Url(s3)} exists; pass --force to overwrite it`);
          }
        } else if (!opts.force && existsSync(opts.out)) {
          throw new Error(`${opts.out} exists; pass --force to overwrite it`);
        }
        await runBackup(opts, io, deps, bucket && s3 ? { bucket, s3 } : undefined);
      } finally {
        bucket?.close();
      }
    });
  addExamples(backup, [
    {
      command: 'openssl rand -out backup.key 32 && secretsync backup --out cluster.backup --key-file backup.key',
      explain: 'every secretsync object, under a key file (keep it apart from the backups)',
    },
    {
      command: 'secretsync backup --out cluster.backup --kms-key alias/secretsync-backup --include-synced --force',
      explain: 'under a KMS key, with the Secrets secretsync wrote, replacing an older cluster.backup',
    },
    {
      command:
        'secretsync backup --out cluster.backup --key-file backup.key --include-local-store --local-store-dir /var/lib/secretsync/store',
      explain: "with the local store's entry files (still encrypted by its master key)",
    },
    {
      command:
        'secretsync backup --out cluster.backup --key-file backup.key --include-store SecretStore/payments/ibm --include-store ClusterSecretStore/ibm-shared',
      explain:
        "with the secrets of two IBM Cloud Secrets Manager stores' primary instances (values encrypted in the file)",
    },
    {
      command:
        'secretsync backup --out s3://acme-backups/secretsync/nightly.backup --kms-key alias/secretsync-backup --s3-region eu-west-1',
      explain: 'uploaded to S3 (credentials from the AWS chain); an existing object is never replaced without --force',
    },
  ]);
}

/** The key a backup is made with (or a restore opens with), from --kms-key / --key-file. */
export async function backupKey(
  opts: { kmsKey?: string; keyFile?: string; region?: string; endpoint?: string },
  deps: EncryptDeps,
): Promise<BackupKey> {
  if (opts.keyFile !== undefined) {
    const keyFile = await readKeyFile(opts.keyFile);
    checkKeyFile(keyFile);
    return { mode: 'key-file', keyFile };
  }
  return {
    mode: 'kms',
    keyId: opts.kmsKey,
    kms: deps.kms({ region: opts.region ?? regionOf(opts.kmsKey), endpoint: opts.endpoint }),
  };
}

export async function readKeyFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`cannot read --key-file ${path}: ${(err as { code?: string }).code ?? String(err)}`);
  }
}

/** The region in a KMS key or alias ARN, used when neither --region nor $AWS_REGION says one. */
export function regionOf(keyId: string | undefined): string | undefined {
  if (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION) return undefined;
  return /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(keyId ?? '')?.[1];
}

/** Export, seal, and write to the file or upload to the bucket. */
async function runBackup(
  opts: BackupOptions,
  io: CliIo,
  deps: EncryptDeps,
  target: { bucket: BackupObjectStore; s3: S3Location } | undefined,
): Promise<void> {
  const key = await backupKey(opts, deps);
  let client: KubeClient | undefined;
  const progress = createProgress(opts.progress ? io.progressStream : undefined, 'backup');
  try {
    const kc = await loadKubeConfig(opts.kubeconfig);
    client = new KubeClient(kc, { userAgent: 'secretsync-backup' });
    const exported = await exportCluster(client, {
      localStoreDir: opts.includeLocalStore ? opts.localStoreDir : undefined,
      includeSynced: opts.includeSynced === true,
      operatorNamespace: opts.operatorNamespace,
      onProgress: (step, done, total) => progress.update(step, done, total),
    });
    if (opts.includeStore.length > 0) {
      progress.update('IBM Cloud Secrets Manager stores read', 0, opts.includeStore.length);
      const instances = await interruptible((signal) =>
        exportIbmStores(client as KubeClient, opts.includeStore.map(parseStoreRef), {
          allowedEndpoints: opts.allowedEndpoints,
          signal,
        }),
      );
      progress.update('IBM Cloud Secrets Manager stores read', instances.length, opts.includeStore.length);
      exported.payload.ibmInstances = instances;
      exported.contents.ibmInstanceSecrets = instances.reduce((n, i) => n + i.secrets.length, 0);
      for (const i of instances)
        for (const s of i.skipped) exported.skipped.push(`${i.store}: ${s.group}/${s.type}/${s.name} (${s.reason})`);
    }
    progress.end();
    const file = await sealBackup(exported.payload, key, {
      secretsyncVersion: packageVersion(),
      source: {
        server: kc.getCurrentCluster()?.server ?? client.server.href,
        context: kc.getCurrentContext() || undefined,
      },
      contents: exported.contents,
    });
    if (target) {
      await interruptible((signal) => target.bucket.put(target.s3, file, { force: opts.force === true, signal }));
    } else {
      try {
        await writeFile(opts.out, file, { mode: 0o600, flag: opts.force ? 'w' : 'wx' });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'EEXIST') throw new Error(`${opts.out} exists; pass --force to overwrite it`);
        throw new Error(`cannot write ${opts.out}: ${code ?? String(err)}`);
      }
    }
    for (const line of describeHeader(readHeader(file))) io.out(line);
    for (const s of exported.skipped) io.out(`skipped ${s}`);
    io.out(`wrote ${opts.out} (${file.length} bytes)`);
  } finally {
    progress.end();
    client?.close();
    if (key.mode === 'key-file') key.keyFile.fill(0);
    else key.kms.close();
  }
}
