import { Command, CommanderError } from 'commander';
import { packageVersion } from '../version.js';
import { registerCompletionCommand } from './completion.js';
import { addExamples } from './examples.js';
import { PROGRAM_NAME, programNameFor } from './program-name.js';
import { registerBackupCommand } from './commands/backup.js';
import { registerConvertCommand } from './commands/convert.js';
import { registerEncryptCommands, sdkEncryptDeps, type EncryptDeps } from './commands/encrypt.js';
import { registerIbmCommands } from './commands/ibm.js';
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
  /**
   * Where progress of long commands is drawn (stderr), with whether it is a
   * terminal; without it (tests, embedding) no progress is shown.
   */
  progressStream?: ProgressStream;
}

/** The part of a tty.WriteStream progress output needs. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(chunk: string): unknown;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
  progressStream: process.stderr,
};

/** What `version` and `--version` print. */
export function versionLine(name: string = PROGRAM_NAME): string {
  return `${name} ${packageVersion()} (node ${process.version})`;
}

/**
 * Builds the `secretsync` command line; `kms` is how commands reach KMS (tests point it at moto);
 * `name` is what usage, examples and errors call the program (`kubectl secretsync` as a plugin).
 */
export function buildProgram(
  io: CliIo = processIo,
  kms: EncryptDeps = sdkEncryptDeps,
  name: string = PROGRAM_NAME,
): Command {
  const program = new Command(name)
    .description('sync secret values from encrypted stores into Kubernetes Secrets')
    .version(versionLine(name), '-V, --version', 'print the version and exit')
    // Root options only before the command: `store get NAME --version 3` is the entry's version.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError('(run with --help for usage)');
  addExamples(program, [
    { command: 'secretsync --version', explain: 'which secretsync this is' },
    {
      command: 'secretsync store list --dir ./store --master-key-file master.key',
      explain: 'entries of a local store',
    },
    { command: 'secretsync backup --help', explain: 'help and examples of one command' },
  ]);
  addExamples(
    program
      .command('version')
      .description('print the secretsync version')
      .action(() => io.out(versionLine(name))),
    [{ command: 'secretsync version', explain: 'the version of secretsync and of Node.js it runs on' }],
  );
  registerRunCommand(program, io);
  registerStoreCommands(program, io);
  registerEncryptCommands(program, io, kms);
  registerRotateCommands(program, io);
  registerBackupCommand(program, io, kms);
  registerRestoreCommand(program, io, kms);
  registerIbmCommands(program, io);
  registerConvertCommand(program, io);
  registerCompletionCommand(program, io);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

/** Runs the CLI; any failure is one clear line on stderr and a non-zero exit. */
export async function main(argv: string[], io: CliIo = processIo, kms: EncryptDeps = sdkEncryptDeps): Promise<number> {
  const name = programNameFor(argv);
  const program = buildProgram(io, kms, name);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message; help and version exit 0.
      return err.exitCode;
    }
    io.err(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
