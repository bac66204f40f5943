import { Command, CommanderError } from 'commander';
import { packageVersion } from '../version.js';
import { registerBackupCommand } from './commands/backup.js';
import { registerConvertCommand } from './commands/convert.js';
import { registerEncryptCommands, sdkEncryptDeps, type EncryptDeps } from './commands/encrypt.js';
import { registerRestoreCommand } from './commands/restore.js';
import { registerRotateCommands } from './commands/rotate.js';
import { registerRunCommand } from './commands/run.js';
import { registerStoreCommands } from './commands/store.js';

/** Output sinks, so tests can drive the CLI without a subprocess. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** Standard input as bytes (values are read from here, never from argv). */
  readStdin(): Promise<Buffer>;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
};

/** Builds the `secretsync` command line; `kms` is how commands reach KMS (tests point it at moto). */
export function buildProgram(io: CliIo = processIo, kms: EncryptDeps = sdkEncryptDeps): Command {
  const program = new Command('secretsync')
    .description('sync secret values from encrypted stores into Kubernetes Secrets')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError('(run with --help for usage)');
  program
    .command('version')
    .description('print the secretsync version')
    .action(() => io.out(`secretsync ${packageVersion()} (node ${process.version})`));
  registerRunCommand(program, io);
  registerStoreCommands(program, io);
  registerEncryptCommands(program, io, kms);
  registerRotateCommands(program, io);
  registerBackupCommand(program, io, kms);
  registerRestoreCommand(program, io, kms);
  registerConvertCommand(program, io);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

/** Runs the CLI; any failure is one clear line on stderr and a non-zero exit. */
export async function main(argv: string[], io: CliIo = processIo, kms: EncryptDeps = sdkEncryptDeps): Promise<number> {
  const program = buildProgram(io, kms);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message; help and version exit 0.
      return err.exitCode;
    }
    io.err(`secretsync: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
