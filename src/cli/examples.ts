// Examples under every command's --help, kept as data so a test can check
// each one against the command tree (the commands and options it uses exist,
// required ones are given), and printed with the name the CLI was invoked by
// (`kubectl secretsync …` as a kubectl plugin).
import type { Command } from 'commander';

export interface Example {
  /** A shell line; every `secretsync` at the start of a pipeline stage is a run of this CLI. */
  command: string;
  /** One line saying what it does. */
  explain: string;
}

const examplesByCommand = new WeakMap<Command, readonly Example[]>();

/** Adds an Examples section after the command's help; returns the command for chaining. */
export function addExamples(cmd: Command, examples: readonly Example[]): Command {
  examplesByCommand.set(cmd, examples);
  return cmd.addHelpText('after', (context) => renderExamples(examples, rootOf(context.command).name()));
}

/** The examples a command was given (tests walk the tree with this). */
export function examplesOf(cmd: Command): readonly Example[] | undefined {
  return examplesByCommand.get(cmd);
}

export function renderExamples(examples: readonly Example[], programName: string): string {
  const lines = ['', 'Examples:'];
  for (const e of examples) {
    lines.push(`  # ${e.explain}`, `  $ ${withProgramName(e.command, programName)}`);
  }
  return lines.join('\n');
}

/** `secretsync` at the start of the line or after `|`, `&&` or `$(` becomes the invoked name. */
export function withProgramName(command: string, programName: string): string {
  return command.replace(/(^|\| |&& |\$\()secretsync(?= )/g, (_m, before: string) => `${before}${programName}`);
}

function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}
