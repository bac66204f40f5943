// The Kubernetes client flags of `secretsync run`: durations from the command
// line or the environment, defaults as documented, bad values refused.
import { expect } from 'chai';
import { Command } from 'commander';
import { registerRunCommand, type RunFlags } from '../../../src/cli/commands/run.js';
import { captureIo } from '../helpers/index.js';

class Parsed extends Error {
  constructor(readonly flags: RunFlags) {
    super('parsed');
  }
}

/** Parses `run` with `args` and `env`, stopping before the operator would start. */
async function parseRun(args: string[], env: Record<string, string> = {}): Promise<RunFlags> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const program = new Command().exitOverride();
    program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    registerRunCommand(program, captureIo());
    program.hook('preAction', (_program, action) => {
      throw new Parsed(action.opts<RunFlags>());
    });
    await program.parseAsync(['node', 'secretsync', 'run', ...args]);
    throw new Error('run was not parsed');
  } catch (err) {
    if (err instanceof Parsed) return err.flags;
    throw err;
  } finally {
    for (const key of Object.keys(env)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

describe('secretsync run: Kubernetes client flags', () => {
  it('defaults to 30s per request, 5s per connection and 90s of watch silence', async () => {
    const flags = await parseRun([]);
    expect([flags.kubeRequestTimeout, flags.kubeConnectTimeout, flags.watchIdleTimeout]).to.deep.equal([
      30_000, 5_000, 90_000,
    ]);
  });

  it('reads Go-style durations from flags and from SECRETSYNC_ variables', async () => {
    const flags = await parseRun(['--kube-request-timeout', '1m30s', '--watch-idle-timeout=2m'], {
      SECRETSYNC_KUBE_CONNECT_TIMEOUT: '1500ms',
    });
    expect([flags.kubeRequestTimeout, flags.kubeConnectTimeout, flags.watchIdleTimeout]).to.deep.equal([
      90_000, 1_500, 120_000,
    ]);
  });

  it('refuses a value that is not a positive duration', async () => {
    for (const [flag, value] of [
      ['--kube-request-timeout', '30'],
      ['--kube-connect-timeout', '0'],
      ['--watch-idle-timeout', 'soon'],
    ] as const) {
      let caught: unknown;
      try {
        await parseRun([flag, value]);
      } catch (err) {
        caught = err;
      }
      expect(String(caught), `${flag} ${value}`).to.contain(flag);
    }
  });
});
