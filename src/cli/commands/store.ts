import type { Command } from 'commander';
import type { CliIo } from '../main.js';

/** `secretsync store put|get|list|delete|history` (being written). */
export function registerStoreCommands(program: Command, _io: CliIo): void {
  program.command('store').description('manage entries of a local store');
}
