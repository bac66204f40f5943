// `secretsync ibm copy-to-secondary`: IBM Cloud Secrets Manager asks the
// customer to keep a secondary instance in another region; this makes that one
// step. It reads the store from the cluster, logs in with the credentials the
// store names, and copies the primary's secrets into a failover instance
// (idempotent: a second run writes nothing). Values are never printed.
import { Command, Option } from 'commander';
import {
  copyStoreToSecondary,
  failedCount,
  parseStoreRef,
  transferLines,
  type StoreRef,
} from '../../backup/ibm-instance.js';
import { KubeClient } from '../../kube/client.js';
import { loadKubeConfig } from '../../kube/config.js';
import { parseAllowedEndpoints } from '../../providers/policy.js';
import { addExamples } from '../examples.js';
import type { CliIo } from '../main.js';
import { interruptible } from './backup.js';

interface CopyOptions {
  store: string;
  namespace?: string;
  cluster?: boolean;
  to?: string;
  groups?: string[];
  dryRun?: boolean;
  kubeconfig?: string;
  allowedEndpoints: string[];
}

/** --allowed-endpoints for commands that connect a namespaced store as the operator would. */
export function allowedEndpointsOption(): Option {
  return new Option(
    '--allowed-endpoints <list>',
    "custom endpoints a namespaced store may name, as the operator's --allowed-endpoints (comma-separated)",
  )
    .env('SECRETSYNC_ALLOWED_ENDPOINTS')
    .default([], 'none')
    .argParser(parseAllowedEndpoints);
}

function commaList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** --store NAME with -n NAMESPACE (a SecretStore) or --cluster (a ClusterSecretStore). */
export function storeRefOf(opts: { store: string; namespace?: string; cluster?: boolean }): StoreRef {
  if (opts.cluster && opts.namespace !== undefined) throw new Error('give -n NAMESPACE or --cluster, not both');
  if (opts.cluster) return parseStoreRef(`ClusterSecretStore/${opts.store}`);
  if (opts.namespace === undefined)
    throw new Error('give -n NAMESPACE (a SecretStore) or --cluster (a ClusterSecretStore)');
  return parseStoreRef(`SecretStore/${opts.namespace}/${opts.store}`);
}

export function registerIbmCommands(program: Command, io: CliIo): void {
  const ibm = program
    .command('ibm')
    .description('IBM Cloud Secrets Manager: copy the secrets of a store’s primary instance to its secondary');
  const copy = ibm
    .command('copy-to-secondary')
    .description(
      "copy the secrets of an ibmSecretsManager store's primary instance into its first failover instance (or --to " +
        'one): missing secrets and secret groups are created, a new version is written only where the value ' +
        'differs and the labels and custom metadata are made equal, so a second run writes nothing. Secrets are ' +
        'matched by secret group, type and name (ids differ between instances). Types IBM makes the values of ' +
        '(iam_credentials, public_cert, private_cert, service_credentials) are skipped with a reason. Values are ' +
        'never printed. Exits non-zero if any secret could not be copied.',
    )
    .requiredOption('--store <name>', 'the SecretStore (with -n) or ClusterSecretStore (with --cluster)')
    .option('-n, --namespace <namespace>', "the SecretStore's namespace")
    .option('--cluster', '--store names a ClusterSecretStore')
    .option('--to <instance>', 'the failover instance to copy to: its region, service URL or host (default the first)')
    .option('--groups <names>', 'copy only the secrets of these secret groups (comma-separated names)', commaList)
    .option('--dry-run', 'compare and report what would be written; write nothing')
    .addOption(
      new Option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config)').env('KUBECONFIG'),
    )
    .addOption(allowedEndpointsOption())
    .action(async (opts: CopyOptions) => {
      const ref = storeRefOf(opts);
      const client = new KubeClient(await loadKubeConfig(opts.kubeconfig), { userAgent: 'secretsync-ibm-copy' });
      try {
        const report = await interruptible((signal) =>
          copyStoreToSecondary(client, ref, {
            allowedEndpoints: opts.allowedEndpoints,
            ...(opts.to !== undefined ? { to: opts.to } : {}),
            ...(opts.groups !== undefined ? { groups: opts.groups } : {}),
            dryRun: opts.dryRun === true,
            signal,
          }),
        );
        io.out(`copy from ${report.from} to ${report.to}`);
        for (const line of transferLines(report, 'copy')) io.out(line);
        const failed = failedCount(report);
        if (failed > 0) throw new Error(`${failed} secret(s) could not be copied (see the FAILED lines above)`);
      } finally {
        client.close();
      }
    });
  addExamples(ibm, [
    {
      command: 'secretsync ibm copy-to-secondary --store ibm -n payments --dry-run',
      explain: 'what copying the primary instance to the secondary would write',
    },
  ]);
  addExamples(copy, [
    {
      command: 'secretsync ibm copy-to-secondary --store ibm -n payments --dry-run',
      explain: 'look first: what would be created or updated on the secondary; nothing is written',
    },
    {
      command: 'secretsync ibm copy-to-secondary --store ibm-shared --cluster',
      explain: "copy a ClusterSecretStore's primary instance into its first failover instance",
    },
    {
      command: 'secretsync ibm copy-to-secondary --store ibm -n payments --to eu-de --groups payments,shared',
      explain: 'only two secret groups, into the failover instance in eu-de',
    },
  ]);
}
