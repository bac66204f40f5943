// The provider flags of `secretsync run`: timeouts, the endpoint allowlist and
// the local store root, from the command line or the environment, and what
// the manager is given for them.
import { expect } from 'chai';
import type { Command } from 'commander';
import { buildProgram } from '../../../src/cli/main.js';
import { providerWiring, type RunFlags } from '../../../src/cli/commands/run.js';
import { captureIo } from '../helpers/index.js';

const ENV = [
  'SECRETSYNC_PROVIDER_CONNECT_TIMEOUT',
  'SECRETSYNC_PROVIDER_REQUEST_TIMEOUT',
  'SECRETSYNC_ALLOWED_ENDPOINTS',
  'SECRETSYNC_LOCAL_STORE_ROOT',
];

/** The flags `run` would start the operator with (the action is replaced, nothing runs). */
async function runFlags(args: string[], env: Record<string, string> = {}): Promise<RunFlags> {
  const saved = ENV.map((name) => [name, process.env[name]] as const);
  for (const name of ENV) delete process.env[name];
  Object.assign(process.env, env);
  try {
    const program = buildProgram(captureIo());
    const run = program.commands.find((c) => c.name() === 'run') as Command;
    let flags: RunFlags | undefined;
    run.action((f: RunFlags) => {
      flags = f;
    });
    await program.parseAsync(['run', ...args], { from: 'user' });
    if (!flags) throw new Error('run did not parse');
    return flags;
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe('secretsync run: provider flags', () => {
  it('defaults: 3 s to connect, 10 s per request, no custom endpoints, no namespaced local stores', async () => {
    const flags = await runFlags([]);
    expect(providerWiring(flags)).to.deep.equal({
      storePolicy: { allowedEndpoints: [], localStoreRoot: undefined },
      providerTimeouts: { connectMs: 3000, requestMs: 10_000 },
    });
  });

  it('takes durations, the allowlist and the root from flags', async () => {
    const flags = await runFlags([
      '--provider-connect-timeout',
      '500ms',
      '--provider-request-timeout',
      '1m',
      '--allowed-endpoints',
      'https://vpce-1.kms.eu-west-1.vpce.amazonaws.com, *.example.com',
      '--local-store-root',
      '/var/lib/secretsync',
    ]);
    expect(providerWiring(flags)).to.deep.equal({
      storePolicy: {
        allowedEndpoints: ['https://vpce-1.kms.eu-west-1.vpce.amazonaws.com', '*.example.com'],
        localStoreRoot: '/var/lib/secretsync',
      },
      providerTimeouts: { connectMs: 500, requestMs: 60_000 },
    });
  });

  it('and from the environment', async () => {
    const flags = await runFlags([], {
      SECRETSYNC_PROVIDER_CONNECT_TIMEOUT: '2s',
      SECRETSYNC_PROVIDER_REQUEST_TIMEOUT: '5s',
      SECRETSYNC_ALLOWED_ENDPOINTS: 'http://moto:5000',
      SECRETSYNC_LOCAL_STORE_ROOT: '/data',
    });
    expect(providerWiring(flags)).to.deep.equal({
      storePolicy: { allowedEndpoints: ['http://moto:5000'], localStoreRoot: '/data' },
      providerTimeouts: { connectMs: 2000, requestMs: 5000 },
    });
  });

  it('refuses a zero timeout, a bad allowlist entry and a relative root', async () => {
    for (const args of [
      ['--provider-request-timeout', '0'],
      ['--provider-connect-timeout', 'soon'],
      ['--allowed-endpoints', 'ftp://x'],
      ['--allowed-endpoints', 'https://user:pw@x'],
      ['--local-store-root', 'relative/dir'],
    ]) {
      let failed = false;
      try {
        await runFlags(args);
      } catch {
        failed = true;
      }
      expect(failed, args.join(' ')).to.equal(true);
    }
  });
});
