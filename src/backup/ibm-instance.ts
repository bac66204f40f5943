// The cluster side of moving IBM Cloud Secrets Manager secrets between
// instances, shared by `secretsync ibm copy-to-secondary`, `backup
// --include-store` and `restore --to-store`: reading the store from the
// cluster, logging in with the credentials it names (through the same code the
// operator uses), and printing what happened. The copying itself is the
// provider's (src/providers/ibm-secrets-manager/copy.ts), behind the few
// functions imported below; this module is the only one the CLI goes through.
import { API_VERSION, type AnyStore } from '../api/types.js';
import { clusterAccess } from '../controller/provider-context.js';
import { isNotFound, type KubeClient } from '../kube/client.js';
import {
  connectIbmStore,
  copyToSecondary,
  readInstanceSecrets,
  summarizeTransfer,
  writeInstanceSecrets,
  type TransferReport,
} from '../providers/ibm-secrets-manager/copy.js';
import { DEFAULT_PROVIDER_TIMEOUTS, type CallOptions, type ProviderContext } from '../providers/provider.js';
import type { IbmInstanceBackup } from './format.js';

export interface StoreRef {
  kind: 'SecretStore' | 'ClusterSecretStore';
  namespace?: string;
  name: string;
}

const DNS_NAME = /^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;

/** `SecretStore/NAMESPACE/NAME` or `ClusterSecretStore/NAME`. */
export function parseStoreRef(text: string): StoreRef {
  const parts = text.split('/');
  if (
    parts.length === 3 &&
    parts[0] === 'SecretStore' &&
    DNS_NAME.test(parts[1] ?? '') &&
    DNS_NAME.test(parts[2] ?? '')
  )
    return { kind: 'SecretStore', namespace: parts[1] as string, name: parts[2] as string };
  if (parts.length === 2 && parts[0] === 'ClusterSecretStore' && DNS_NAME.test(parts[1] ?? ''))
    return { kind: 'ClusterSecretStore', name: parts[1] as string };
  throw new Error(`expected SecretStore/NAMESPACE/NAME or ClusterSecretStore/NAME, got "${text}"`);
}

export function formatStoreRef(ref: StoreRef): string {
  return ref.kind === 'SecretStore'
    ? `SecretStore/${ref.namespace ?? ''}/${ref.name}`
    : `ClusterSecretStore/${ref.name}`;
}

/** The store from the cluster; it must be an ibmSecretsManager store. */
export async function loadIbmStore(client: KubeClient, ref: StoreRef): Promise<AnyStore> {
  const path =
    ref.kind === 'SecretStore'
      ? `/apis/${API_VERSION}/namespaces/${ref.namespace ?? ''}/secretstores/${ref.name}`
      : `/apis/${API_VERSION}/clustersecretstores/${ref.name}`;
  let store: AnyStore;
  try {
    store = await client.get<AnyStore>(path);
  } catch (err) {
    if (isNotFound(err)) throw new Error(`${formatStoreRef(ref)} not found`);
    throw err;
  }
  store.kind = ref.kind;
  if (!store.spec?.provider?.ibmSecretsManager)
    throw new Error(
      `${formatStoreRef(ref)} is not an IBM Cloud Secrets Manager store (spec.provider.ibmSecretsManager)`,
    );
  return store;
}

export interface CliConnectOptions {
  /**
   * Custom endpoints a namespaced store may name, as the operator's
   * --allowed-endpoints: a namespaced store is held to the same policy here.
   */
  allowedEndpoints?: readonly string[];
}

/**
 * The ProviderContext of a command run by a person: the store's credentials
 * read with the person's kubeconfig, the operator's default timeouts, no
 * metrics. A namespaced store may not use the operator's identity here either.
 */
export function cliProviderContext(client: KubeClient, store: AnyStore, options: CliConnectOptions): ProviderContext {
  return {
    ...clusterAccess(client),
    storeNamespace: store.kind === 'SecretStore' ? store.metadata.namespace : undefined,
    allowOperatorIdentityForNamespacedStores: false,
    observe: (_operation, call) => call(),
    policy: { allowedEndpoints: options.allowedEndpoints ?? [], localStoreRoot: undefined },
    timeouts: DEFAULT_PROVIDER_TIMEOUTS,
  };
}

/** `secretsync ibm copy-to-secondary`. */
export async function copyStoreToSecondary(
  client: KubeClient,
  ref: StoreRef,
  options: CliConnectOptions & CallOptions & { to?: string; groups?: readonly string[]; dryRun?: boolean },
): Promise<TransferReport & { from: string; to: string }> {
  const store = await loadIbmStore(client, ref);
  return copyToSecondary(store, cliProviderContext(client, store, options), options);
}

/** The secrets of each named store's primary instance, for a backup payload. */
export async function exportIbmStores(
  client: KubeClient,
  refs: readonly StoreRef[],
  options: CliConnectOptions & CallOptions = {},
): Promise<IbmInstanceBackup[]> {
  const out: IbmInstanceBackup[] = [];
  for (const ref of refs) {
    const store = await loadIbmStore(client, ref);
    const instances = await connectIbmStore(store, cliProviderContext(client, store, options), options);
    const snapshot = await readInstanceSecrets(instances.primary, options);
    out.push({
      store: formatStoreRef(ref),
      instance: instances.primary.name,
      secrets: snapshot.secrets,
      skipped: snapshot.skipped,
    });
  }
  return out;
}

/** A backup's secrets of one instance, written to the primary instance of `target` (a store on this cluster). */
export async function restoreIbmInstance(
  client: KubeClient,
  backup: IbmInstanceBackup,
  target: StoreRef,
  options: CliConnectOptions & CallOptions & { dryRun?: boolean } = {},
): Promise<TransferReport & { to: string }> {
  const store = await loadIbmStore(client, target);
  const instances = await connectIbmStore(store, cliProviderContext(client, store, options), options);
  const written = await writeInstanceSecrets(instances.primary, backup.secrets, options);
  return { ...written, skipped: backup.skipped, to: instances.primary.name };
}

const VERBS = {
  created: ['created', 'would create'],
  updated: ['updated', 'would update'],
  unchanged: ['unchanged', 'unchanged'],
  failed: ['FAILED', 'FAILED'],
  skipped: ['skipped', 'would skip'],
} as const;

/**
 * A transfer's report as lines: one per secret (names, what changed, why it
 * was skipped or failed; never a value) and a summary line beginning `title`.
 */
export function transferLines(report: TransferReport, title: string): string[] {
  const dry = report.dryRun ? 1 : 0;
  const width = Math.max(...Object.values(VERBS).map((v) => v[dry].length));
  const lines: string[] = [];
  for (const group of report.groupsCreated)
    lines.push(`${(report.dryRun ? 'would create' : 'created').padEnd(width)}  secret group ${group}`);
  for (const i of report.items)
    lines.push(`${VERBS[i.outcome][dry].padEnd(width)}  ${i.what}${i.note ? ` (${i.note})` : ''}`);
  for (const s of report.skipped)
    lines.push(`${VERBS.skipped[dry].padEnd(width)}  ${s.group}/${s.type}/${s.name} (${s.reason})`);
  const { outcomes, skippedByType } = summarizeTransfer(report);
  const skippedTypes = Object.entries(skippedByType)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, n]) => `${type} ${n}`);
  lines.push(
    `${report.dryRun ? `dry run, nothing written: ${title}` : title}: ${outcomes.created} created, ${outcomes.updated} updated, ` +
      `${outcomes.unchanged} unchanged, ${outcomes.failed} failed; ${report.skipped.length} skipped` +
      (skippedTypes.length > 0 ? ` (${skippedTypes.join(', ')})` : ''),
  );
  return lines;
}

/** How many secrets failed: the commands exit non-zero when any did. */
export function failedCount(report: TransferReport): number {
  return report.items.filter((i) => i.outcome === 'failed').length;
}
