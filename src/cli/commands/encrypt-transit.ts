// The `--transit` side of `secretsync encrypt` and `secretsync reencrypt`:
// ciphertexts made and rewrapped by Vault's transit engine instead of AWS KMS.
// Kept apart from encrypt.ts so that the KMS path (and its lazily loaded SDK)
// reads as before; both share the binding flags, stdin handling and output.
import type { Command } from 'commander';
import { TransitKey, type FailureOf, type TransitApi } from '../../providers/vault/transit.js';
import { cliFailureOf, vaultConnection, type VaultConnectionOptions } from '../vault-connection.js';

/** How the commands reach Vault; tests may substitute their own TransitApi. */
export type VaultDeps = (options: VaultConnectionOptions) => Promise<{ api: TransitApi; failureOf: FailureOf }>;

export const defaultVaultDeps: VaultDeps = async (options) => ({
  api: await vaultConnection(options),
  failureOf: cliFailureOf,
});

export interface TransitCliOptions extends VaultConnectionOptions {
  transit?: boolean;
  mount?: string;
  key: string;
  region?: string;
  endpoint?: string;
}

/** Default `spec.storeRef.name` of a ManagedSecret written with `--transit --output yaml`. */
export const DEFAULT_TRANSIT_STORE_NAME = 'vault';

export function withTransitOptions(cmd: Command): Command {
  return cmd
    .option('--transit', 'use Vault transit instead of AWS KMS: --key names a transit key (created with derived=true)')
    .option('--mount <path>', 'with --transit: mount path of the transit engine', 'transit')
    .option('--vault-addr <url>', 'with --transit: Vault address (default: $VAULT_ADDR)')
    .option('--vault-namespace <ns>', 'with --transit: Vault Enterprise namespace (default: $VAULT_NAMESPACE)')
    .option('--vault-cacert <file>', 'with --transit: PEM CA bundle for Vault (default: $VAULT_CACERT)')
    .option(
      '--vault-token-file <file>',
      'with --transit: file holding the Vault token (default: $VAULT_TOKEN, then ~/.vault-token)',
    );
}

/** The transit key the command works with; refuses KMS-only flags and Vault flags without --transit. */
export async function transitKeyFor(opts: TransitCliOptions, deps: VaultDeps): Promise<TransitKey> {
  if (opts.region !== undefined || opts.endpoint !== undefined) {
    throw new Error('--region and --endpoint are for AWS KMS; with --transit give --vault-addr (or VAULT_ADDR)');
  }
  const { api, failureOf } = await deps(opts);
  try {
    return new TransitKey(
      api,
      { key: opts.key, ...(opts.mount !== undefined ? { mount: opts.mount } : {}) },
      failureOf,
    );
  } catch (err) {
    // The store-spec wording (decrypt.transit.key) reads oddly on a command line.
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(message.replace('decrypt.transit.key', '--key').replace('decrypt.transit.mount', '--mount'));
  }
}

/** Vault flags given without --transit are a mistake worth naming rather than ignoring. */
export function refuseVaultFlagsWithoutTransit(opts: TransitCliOptions): void {
  if (opts.transit) return;
  const given: string[] = [];
  if (opts.vaultAddr !== undefined) given.push('--vault-addr');
  if (opts.vaultNamespace !== undefined) given.push('--vault-namespace');
  if (opts.vaultCacert !== undefined) given.push('--vault-cacert');
  if (opts.vaultTokenFile !== undefined) given.push('--vault-token-file');
  if (opts.mount !== undefined && opts.mount !== 'transit') given.push('--mount');
  if (given.length > 0) throw new Error(`${given.join(', ')} ${given.length === 1 ? 'needs' : 'need'} --transit`);
}
