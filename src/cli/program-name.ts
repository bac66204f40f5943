// How the CLI was invoked decides the name it gives itself in usage lines,
// examples and errors: `kubectl secretsync …` when kubectl ran it as a plugin
// (kubectl execs an executable named kubectl-secretsync found on PATH), plain
// `secretsync` otherwise. A person copies what help prints, so it must be what
// they can type.
import { basename } from 'node:path';

export const PROGRAM_NAME = 'secretsync';
export const KUBECTL_PLUGIN_NAME = 'kubectl secretsync';

/**
 * The name for process.argv: kubectl runs a plugin by its path, and Node keeps
 * the name of a symlink (npm's bin link) in argv[1], so the basename tells.
 */
export function programNameFor(argv: readonly string[]): string {
  const script = argv[1] === undefined ? '' : basename(argv[1]).replace(/\.(c|m)?js$/, '');
  return script === 'kubectl-secretsync' ? KUBECTL_PLUGIN_NAME : PROGRAM_NAME;
}
