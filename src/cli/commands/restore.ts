// `secretsync restore --in FILE`: applies a backup to a cluster, idempotently,
// and reports what it created, changed and left alone. A file that does not
// authenticate is refused before anything is applied. `--in s3://BUCKET/KEY`
// downloads the file from S3 first (src/backup/s3.ts).
// `--to-store` writes the backup's IBM Cloud Secrets Manager secrets into a
// store's primary instance (src/backup/ibm-instance.ts).
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { describeHeader, openBackup, MAX_FILE_BYTES, type BackupKey } from '../../backup/format.js';
import {
  failedCount,
  formatStoreRef,
  parseStoreRef,
  restoreIbmInstance,
  transferLines,
  type StoreRef,
} from '../../backup/ibm-instance.js';
import { restoreBackup, summarize, type Outcome } from '../../backup/import.js';
import type { IbmInstanceBackup } from '../../backup/format.js';
import { isS3Url, parseS3Url, sdkBackupObjectStore } from '../../backup/s3.js';
import { KubeClient } from '../../kube/client.js';
import type { CliIo } from '../main.js';
import { addExamples } from '../examples.js';
import { createProgress } from '../progress.js';
import { interruptible, readKeyFile, regionOf, withClusterAndKmsOptions, withS3Options } from './backup.js';
import { sdkEncryptDeps, type EncryptDeps } from './encrypt.js';
import { allowedEndpointsOption } from './ibm.js';
import { loadKubeConfig } from '../../kube/config.js';

interface RestoreCliOptions {
  in: string;
  keyFile?: string;
  region?: string;
  endpoint?: string;
  kubeconfig?: string;
  dryRun?: boolean;
  createNamespaces?: boolean;
  overwriteSynced?: boolean;
  localStoreDir?: string;
  overwriteLocalStore?: boolean;
  toStore: string[];
  allowedEndpoints: string[];
  s3Region?: string;
  s3Endpoint?: string;
  operatorNamespace: string;
  progress: boolean;
}

const VERB: Record<Outcome, [string, string]> = {
  created: ['created', 'would create'],
  changed: ['changed', 'would change'],
  unchanged: ['unchanged', 'unchanged'],
  kept: ['left alone', 'would leave alone'],
  skipped: ['skipped', 'would skip'],
  failed: ['FAILED', 'FAILED'],
};

export function registerRestoreCommand(program: Command, io: CliIo, deps: EncryptDeps = sdkEncryptDeps): void {
  const restore = withS3Options(withClusterAndKmsOptions(program.command('restore')))
    .summary('apply a backup to a cluster (idempotent; --dry-run only reports)')
    .description(
      'authenticate and decrypt a backup made by `secretsync backup`, then create what is missing and update what ' +
        'differs, reporting each object as created, changed, unchanged or left alone. A KMS-encrypted backup names ' +
        'its key in its header; a key-file one needs --key-file. A corrupted or tampered file is refused before ' +
        'anything is applied.',
    )
    .requiredOption('--in <file>', 'the backup file, or s3://BUCKET/KEY to download it')
    .option(
      '--dry-run',
      'print the header and what would happen; apply nothing (the API server validates with dryRun=All)',
    )
    .option('--create-namespaces', 'create namespaces the backup needs (without it, a missing one stops the restore)')
    .option(
      '--overwrite-synced',
      'replace a synced Secret whose data differs from the backup (default: leave it alone)',
    )
    .addOption(
      new Option('--local-store-dir <path>', "write the backup's local store entries into this directory").env(
        'SECRETSYNC_STORE_DIR',
      ),
    )
    .option('--overwrite-local-store', 'replace local store entry files that differ from the backup')
    .option(
      '--to-store <[FROM=]KIND/NAMESPACE/NAME>',
      "write the backup's IBM Cloud Secrets Manager secrets into this store's primary instance (a store on the " +
        'target cluster: SecretStore/NAMESPACE/NAME or ClusterSecretStore/NAME); FROM= names which included store, ' +
        'needed when the backup holds several; repeatable',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .addOption(allowedEndpointsOption())
    .option(
      '--no-progress',
      'no progress on stderr (shown by default: a bar on a terminal, a line every 5 s otherwise)',
    )
    .action(async (opts: RestoreCliOptions) => {
      // Parsed before anything is read or applied: a typo stops here.
      opts.toStore.forEach(parseToStore);
      const bytes = await readBackupBytes(opts);
      const keyFile = opts.keyFile === undefined ? undefined : await readKeyFile(opts.keyFile);
      let kms: BackupKey | undefined;
      const opened = await openBackup(bytes, (header) => {
        if (keyFile) return { mode: 'key-file', keyFile };
        const keyId = header.encryption.mode === 'kms' ? header.encryption.keyId : undefined;
        kms = {
          mode: 'kms',
          kms: deps.kms({ region: opts.region ?? regionOf(keyId), endpoint: opts.endpoint }),
        };
        return kms;
      }).finally(() => {
        keyFile?.fill(0);
        if (kms?.mode === 'kms') kms.kms.close();
      });
      const dry = opts.dryRun === true;
      for (const line of describeHeader(opened.header)) io.out(line);
      const client = new KubeClient(await loadKubeConfig(opts.kubeconfig), { userAgent: 'secretsync-restore' });
      const progress = createProgress(opts.progress ? io.progressStream : undefined, 'restore');
      try {
        const report = await restoreBackup(client, opened.payload, {
          dryRun: dry,
          createNamespaces: opts.createNamespaces === true,
          overwriteSynced: opts.overwriteSynced === true,
          localStoreDir: opts.localStoreDir,
          overwriteLocalStore: opts.overwriteLocalStore === true,
          operatorNamespace: opts.operatorNamespace,
          onProgress: (step, done, total) => progress.update(step, done, total),
        });
        progress.end();
        const width = Math.max(...Object.values(VERB).map((v) => v[dry ? 1 : 0].length));
        for (const item of report.items) {
          const verb = VERB[item.outcome][dry ? 1 : 0].padEnd(width);
          io.out(`${verb}  ${item.what}${item.note ? ` (${item.note})` : ''}`);
        }
        for (const note of report.notes) io.out(`note: ${note}`);
        const c = summarize(report);
        io.out(
          `${dry ? 'dry run, nothing applied: ' : 'restore: '}${c.created} created, ${c.changed} changed, ${c.unchanged} unchanged, ${c.kept} left alone, ${c.skipped} skipped, ${c.failed} failed`,
        );
        const ibmFailed = await restoreIbmInstances(client, opened.payload.ibmInstances ?? [], opts, dry, io);
        if (c.failed > 0) throw new Error(`${c.failed} object(s) could not be restored (see the FAILED lines above)`);
        if (ibmFailed > 0)
          throw new Error(
            `${ibmFailed} IBM Cloud Secrets Manager secret(s) could not be restored (see the FAILED lines above)`,
          );
      } finally {
        progress.end();
        client.close();
      }
    });
  addExamples(restore, [
    {
      command: 'secretsync restore --in cluster.backup --key-file backup.key --dry-run --create-namespaces',
      explain: 'look first: the header and what would happen; nothing is applied',
    },
    {
      command:
        'secretsync restore --in cluster.backup --key-file backup.key --create-namespaces --local-store-dir /var/lib/secretsync/store',
      explain: 'apply it, creating missing namespaces and writing the local store entries',
    },
    {
      command: 'secretsync restore --in cluster.backup --kubeconfig ~/.kube/dr.yaml --overwrite-synced',
      explain:
        'a KMS-encrypted backup (its header names the key) to another cluster, replacing synced Secrets that differ',
    },
    {
      command:
        'secretsync restore --in cluster.backup --key-file backup.key --to-store SecretStore/payments/ibm-restored',
      explain: "with the backup's IBM Cloud Secrets Manager secrets written into that store's primary instance",
    },
    {
      command:
        'secretsync restore --in s3://acme-backups/secretsync/nightly.backup --key-file backup.key --s3-region eu-west-1 --dry-run',
      explain: 'a backup from S3 (credentials from the AWS chain): look first, as above',
    },
  ]);
}

/** `--to-store [FROM=]TARGET`. */
function parseToStore(text: string): { from?: string; to: StoreRef } {
  const eq = text.indexOf('=');
  if (eq < 0) return { to: parseStoreRef(text) };
  return { from: formatStoreRef(parseStoreRef(text.slice(0, eq))), to: parseStoreRef(text.slice(eq + 1)) };
}

/**
 * The backup's IBM instance secrets into the stores --to-store names (after the
 * cluster objects: the target store may be one the restore just created).
 * Without --to-store they are only noted. Returns how many secrets failed.
 */
async function restoreIbmInstances(
  client: KubeClient,
  instances: readonly IbmInstanceBackup[],
  opts: RestoreCliOptions,
  dry: boolean,
  io: CliIo,
): Promise<number> {
  const targets = opts.toStore.map(parseToStore);
  if (targets.length === 0) {
    for (const i of instances)
      io.out(
        `note: the backup holds ${i.secrets.length} secrets of ${i.store} (${i.instance}); give --to-store to write them into an instance`,
      );
    return 0;
  }
  if (instances.length === 0) throw new Error('--to-store: the backup holds no IBM Cloud Secrets Manager secrets');
  let failed = 0;
  for (const t of targets) {
    let source: IbmInstanceBackup | undefined;
    if (t.from === undefined) {
      if (instances.length > 1)
        throw new Error(
          `--to-store: the backup holds several stores (${instances.map((i) => i.store).join(', ')}); name one as FROM=TARGET`,
        );
      source = instances[0];
    } else {
      source = instances.find((i) => i.store === t.from);
      if (!source) throw new Error(`--to-store: the backup holds no secrets of ${t.from}`);
    }
    if (!source) continue;
    const report = await interruptible((signal) =>
      restoreIbmInstance(client, source, t.to, { allowedEndpoints: opts.allowedEndpoints, dryRun: dry, signal }),
    );
    io.out(`IBM Cloud Secrets Manager secrets of ${source.store} into ${formatStoreRef(t.to)} at ${report.to}`);
    for (const line of transferLines(report, 'IBM restore')) io.out(line);
    failed += failedCount(report);
  }
  return failed;
}

/** The backup's bytes, from the file or the S3 object --in names. */
async function readBackupBytes(opts: RestoreCliOptions): Promise<Buffer> {
  if (isS3Url(opts.in)) {
    const loc = parseS3Url(opts.in);
    const bucket = sdkBackupObjectStore({ region: opts.s3Region, endpoint: opts.s3Endpoint });
    try {
      return await interruptible((signal) => bucket.get(loc, { maxBytes: MAX_FILE_BYTES, signal }));
    } finally {
      bucket.close();
    }
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(opts.in);
  } catch (err) {
    throw new Error(`cannot read --in ${opts.in}: ${(err as { code?: string }).code ?? String(err)}`);
  }
  if (bytes.length > MAX_FILE_BYTES) throw new Error(`${opts.in} is larger than ${MAX_FILE_BYTES} bytes`);
  return bytes;
}
