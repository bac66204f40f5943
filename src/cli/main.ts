import { Command, CommanderError } from 'commander';
import { packageVersion } from '../version.js';

/** Builds the `secretsync` command line; exported so tests can drive it without a subprocess. */
export function buildProgram(out: (line: string) => void = (l) => console.log(l)): Command {
  const program = new Command('secretsync')
    .description('sync secret values from encrypted stores into Kubernetes Secrets')
    .exitOverride()
    .showHelpAfterError();
  program
    .command('version')
    .description('print the secretsync version')
    .action(() => out(`secretsync ${packageVersion()} (node ${process.version})`));
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}
