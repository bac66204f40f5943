// The completion scripts, run by the real shells: bash through its completion
// function (as `complete -F` calls it), zsh with its completion system loaded
// and the completer's output functions stubbed (zsh only completes inside a
// line editor), fish through `complete -C`, which completes a command line the
// way pressing TAB does. zsh and fish are skipped, with a message, where they
// are not installed (scripts/ensure-deps.sh installs them for CI).
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { completionScript, completionTree, SHELLS } from '../../../src/cli/completion.js';
import { buildProgram, main } from '../../../src/cli/main.js';
import { captureIo } from '../helpers/index.js';

const has = (shell: string) => spawnSync(shell, ['-c', 'exit 0']).status === 0;

describe('secretsync completion', function () {
  // Each case starts a shell; zsh's compinit alone takes about half a second.
  this.timeout(20_000);
  let dir: string;
  const scriptFile = (shell: string) => {
    const path = join(dir, `secretsync.${shell}`);
    writeFileSync(path, completionScript(buildProgram(captureIo()), shell as (typeof SHELLS)[number]));
    return path;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'secretsync-completion-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the script for each shell, and refuses another shell', async () => {
    for (const shell of SHELLS) {
      const io = captureIo();
      expect(await main(['node', 'secretsync', 'completion', shell], io)).to.equal(0);
      expect(io.outLines.join('\n')).to.contain(`${shell} completion for secretsync`);
    }
    execFileSync('bash', ['-n', scriptFile('kubectl-plugin')]);
    const io = captureIo();
    expect(await main(['node', 'secretsync', 'completion', 'tcsh'], io)).to.not.equal(0);
    expect(io.errLines.join('\n')).to.match(/Allowed choices are bash, zsh, fish, kubectl-plugin/);
  });

  it('is made from the command tree: every command and option is in it', () => {
    const program = buildProgram(captureIo());
    const tree = completionTree(program);
    const paths = tree.map((n) => n.path);
    expect(paths).to.include.members(['', 'store', 'store put', 'backup', 'restore', 'reencrypt', 'completion']);
    // A command added later shows up without touching completion.ts.
    program.command('made-up-command').option('--made-up-flag <v>');
    const bash = completionScript(program, 'bash');
    expect(bash).to.contain('made-up-command').and.to.contain('--made-up-flag');
  });

  describe('bash', () => {
    const complete = (script: string, words: string[]): string[] => {
      const driver = `source ${JSON.stringify(script)}
complete -p secretsync >/dev/null || exit 3
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_secretsync
printf '%s\\n' "\${COMPREPLY[@]}"`;
      return execFileSync('bash', ['--norc', '-c', driver], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean);
    };

    it('passes bash -n', () => {
      execFileSync('bash', ['-n', scriptFile('bash')]);
    });

    it('completes `secretsync st<TAB>` to store, and subcommands, options and choices after it', () => {
      const script = scriptFile('bash');
      expect(complete(script, ['secretsync', 'st'])).to.deep.equal(['store']);
      expect(complete(script, ['secretsync', 'store', ''])).to.include.members(['put', 'get', 'list', 'reseal']);
      expect(complete(script, ['secretsync', 'store', 'put', '--'])).to.include.members([
        '--dir',
        '--from-file',
        '--keep-versions',
        '--help',
      ]);
      // An option value is skipped when finding the command: --dir's value is not a command.
      expect(complete(script, ['secretsync', 'store', 'get', '--dir', 'store', '--v'])).to.deep.equal(['--version']);
      expect(complete(script, ['secretsync', 'encrypt', '--scope', ''])).to.deep.equal([
        'strict',
        'namespace',
        'cluster',
      ]);
      expect(complete(script, ['secretsync', 'completion', 'f'])).to.deep.equal(['fish']);
      expect(complete(script, ['secretsync', 'completion', 'k'])).to.deep.equal(['kubectl-plugin']);
      expect(complete(script, ['secretsync', '--ver'])).to.deep.equal(['--version']);
      expect(complete(script, ['secretsync', 'help', 'ba'])).to.deep.equal(['backup']);
      expect(complete(script, ['secretsync', 'store', 'help', 'h'])).to.deep.equal(['history']);
    });

    it('offers files for an option that takes a path', () => {
      writeFileSync(join(dir, 'kubeconfig-test.yaml'), '');
      expect(complete(scriptFile('bash'), ['secretsync', 'backup', '--kubeconfig', 'kubeconfig-t'])).to.deep.equal([
        'kubeconfig-test.yaml',
      ]);
    });
  });

  describe('zsh', () => {
    before(function () {
      if (!has('zsh')) {
        console.log('      (zsh is not installed: skipping; `apt-get install zsh`, or scripts/ensure-deps.sh)');
        this.skip();
      }
    });

    const complete = (script: string, words: string[]): string => {
      const driver = `autoload -Uz compinit && compinit -D -u
source ${JSON.stringify(script)}
print -r -- "registered:$_comps[secretsync]"
_describe() { local -a items; items=( "\${(@P)4}" ); print -r -- "describe:\${(j: :)\${items[@]%%:*}}"; }
compadd() { shift; print -r -- "compadd:\${(@P)1}"; }
_files() { print -r -- files; }
words=( ${words.map((w) => `'${w}'`).join(' ')} ); CURRENT=\${#words}
_secretsync`;
      return execFileSync('zsh', ['-f', '-c', driver], { cwd: dir, encoding: 'utf8' });
    };

    it('passes zsh -n and registers with compdef', () => {
      const script = scriptFile('zsh');
      execFileSync('zsh', ['-n', script]);
      expect(complete(script, ['secretsync', ''])).to.match(/^registered:_secretsync$/m);
    });

    it('offers store for `secretsync st`, options of a subcommand, choices and files', () => {
      const script = scriptFile('zsh');
      expect(complete(script, ['secretsync', 'st'])).to.match(/^describe:.*\bstore\b/m);
      expect(complete(script, ['secretsync', 'store', 'put', '--'])).to.match(/^describe:.*--from-file --property/m);
      expect(complete(script, ['secretsync', 'encrypt', '--scope', ''])).to.match(
        /^compadd:strict namespace cluster$/m,
      );
      expect(complete(script, ['secretsync', 'backup', '--out', ''])).to.match(/^files$/m);
    });
  });

  describe('fish', () => {
    before(function () {
      if (!has('fish')) {
        console.log('      (fish is not installed: skipping; `apt-get install fish`, or scripts/ensure-deps.sh)');
        this.skip();
      }
    });

    const complete = (script: string, line: string): string[] =>
      execFileSync(
        'fish',
        ['--no-config', '-c', `source ${JSON.stringify(script)}; complete -C ${JSON.stringify(line)}`],
        {
          cwd: dir,
          encoding: 'utf8',
        },
      )
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0] ?? '');

    it('passes fish -n', () => {
      execFileSync('fish', ['--no-config', '-n', scriptFile('fish')]);
    });

    it('completes `secretsync st` to store, and options, choices after a subcommand', () => {
      const script = scriptFile('fish');
      expect(complete(script, 'secretsync st')).to.deep.equal(['store']);
      expect(complete(script, 'secretsync store ')).to.include.members(['put', 'get', 'history']);
      expect(complete(script, 'secretsync store put --')).to.include.members(['--dir', '--from-file', '--help']);
      expect(complete(script, 'secretsync store get --dir x --v')).to.deep.equal(['--version']);
      expect(complete(script, 'secretsync encrypt --scope ')).to.have.members(['strict', 'namespace', 'cluster']);
      expect(complete(script, 'secretsync completion ')).to.have.members(['bash', 'zsh', 'fish', 'kubectl-plugin']);
    });
  });
});
