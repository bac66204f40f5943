import type { Command } from 'commander';
import type { CliIo } from '../main.js';

/** `secretsync run`: the operator (being written). */
export function registerRunCommand(program: Command, _io: CliIo): void {
  program.command('run').description('run the operator');
}
