// Loads an AWS provider and its SDK one package per event-loop turn. The SDK is
// CommonJS: importing a client evaluates its whole graph (@smithy/core,
// @aws-sdk/core, the HTTP handler, the credential chain, the client) in one
// synchronous step, 180–450 ms on the 2-core machine, during which no timer runs
// (Lease renewals, watch watchdogs) and no other namespace's event is handled:
// the hostile benchmark saw it as the operator's longest event-loop block once
// the first AWS store appeared. Required one package at a time, with a turn of
// the event loop between, the longest delay of the loop while a provider loads
// fell from 92–133 ms to 34–64 ms (the longest step is @aws-sdk/client-ssm).
// Secrets Manager's client and cockatiel are shared (cockatiel: ../failover.ts, through aws/failover.ts).
//
// The shared packages are resolved from the client that depends on them, so they
// are the very files the client loads next (Node picks the CommonJS build for
// both `import` and `require` of the SDK: its exports list `node` first). A step
// that cannot be resolved is skipped: the client's own import still loads it,
// only not in a turn of its own.
import { createRequire } from 'node:module';
import { setImmediate as turn } from 'node:timers/promises';
import type { Provider } from '../provider.js';

const requireHere = createRequire(import.meta.url);

/** Packages loaded before any AWS client, heaviest shared ones first; [resolved from, package]. */
const SHARED_STEPS: readonly (readonly [string | undefined, string])[] = [
  ['@aws-sdk/client-sts', '@smithy/core'],
  ['@aws-sdk/client-sts', '@smithy/node-http-handler'],
  ['@aws-sdk/client-sts', '@aws-sdk/core'],
  ['@aws-sdk/client-sts', '@aws-sdk/credential-provider-node'],
  [undefined, '@aws-sdk/client-sts'],
  [undefined, '@aws-sdk/credential-providers'],
  [undefined, '@aws-sdk/client-kms'],
  [undefined, '@aws-sdk/client-secrets-manager'],
  [undefined, 'cockatiel'],
];

function requireStep(from: string | undefined, name: string): void {
  try {
    const require = from === undefined ? requireHere : createRequire(requireHere.resolve(from));
    require(name);
  } catch {
    // Warm-up only: the provider's import below loads whatever this could not.
  }
}

/** Requires each package in a turn of its own (a package already loaded costs nothing). */
export async function requireInSteps(steps: readonly (readonly [string | undefined, string])[]): Promise<void> {
  for (const [from, name] of steps) {
    await turn();
    requireStep(from, name);
  }
  await turn();
}

const PROVIDERS = {
  awsKms: { client: [], load: async () => (await import('../aws-kms/index.js')).awsKmsProvider },
  awsSecretsManager: {
    client: [],
    load: async () => (await import('../aws-secrets-manager/index.js')).awsSecretsManagerProvider,
  },
  awsParameterStore: {
    client: ['@aws-sdk/client-ssm'],
    load: async () => (await import('../aws-parameter-store/index.js')).awsParameterStoreProvider,
  },
} satisfies Record<string, { client: string[]; load: () => Promise<Provider> }>;

/** An AWS provider, its SDK loaded in steps first. */
export async function loadAwsProvider(name: keyof typeof PROVIDERS): Promise<Provider> {
  const provider = PROVIDERS[name];
  await requireInSteps([...SHARED_STEPS, ...provider.client.map((c) => [undefined, c] as const)]);
  return provider.load();
}
