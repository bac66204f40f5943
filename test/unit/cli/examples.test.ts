// Every command's --help ends with examples, and each example is true: every
// run of secretsync in it is parsed by the real command tree (with the actions
// replaced by a recorder), so a renamed option, a missing required option or
// argument, or a bad choice in an example fails here.
import { expect } from 'chai';
import { Command, CommanderError } from 'commander';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { examplesOf, withProgramName } from '../../../src/cli/examples.js';
import { buildProgram, main } from '../../../src/cli/main.js';
import { captureIo } from '../helpers/index.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

const pathOf = (cmd: Command): string => (cmd.parent ? `${pathOf(cmd.parent)} ${cmd.name()}`.trim() : '');

/** The secretsync runs in a shell line: the words after `secretsync` up to a pipe, `&&`, `)` or a redirect. */
function invocations(line: string): string[][] {
  const runs: string[][] = [];
  for (const m of line.matchAll(/(?:^|\| |&& |<\(|\$\()secretsync ([^|&)<>]*)/g)) {
    runs.push(shellWords(m[1] ?? ''));
  }
  return runs;
}

/** Words as a POSIX shell splits them (quotes and ~ kept simple: enough for the examples). */
function shellWords(text: string): string[] {
  const words: string[] = [];
  for (const m of text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3] ?? '');
  return words;
}

/** Parses argv with the real tree; returns the command path that would run, or throws commander's error. */
async function parse(argv: string[]): Promise<string> {
  const program = buildProgram(captureIo());
  let ran = '';
  for (const cmd of allCommands(program)) {
    cmd.exitOverride();
    if (cmd.commands.length > 0 && cmd !== program) continue;
    cmd.action((...args: unknown[]) => {
      const self = args[args.length - 1] as Command;
      const positional = self.registeredArguments;
      const variadic = positional.some((a) => a.variadic);
      if (!variadic && self.args.length > positional.length) {
        throw new Error(`unexpected arguments: ${self.args.slice(positional.length).join(' ')}`);
      }
      ran = pathOf(self);
    });
  }
  try {
    await program.parseAsync(['node', 'secretsync', ...argv]);
  } catch (err) {
    // --help and --version end the parse with exit code 0.
    if (err instanceof CommanderError && err.exitCode === 0) return 'help';
    throw err;
  }
  return ran;
}

describe('secretsync --help examples', () => {
  const program = buildProgram(captureIo());

  for (const cmd of allCommands(program)) {
    const path = pathOf(cmd) || '(root)';
    it(`${path}: has examples, and each parses against the command tree`, async () => {
      const examples = examplesOf(cmd) ?? [];
      expect(
        examples.length,
        `${path} has no examples: give them with addExamples() (src/cli/examples.ts)`,
      ).to.be.greaterThan(0);
      let runsThisCommand = cmd.commands.length > 0 || cmd === program;
      for (const e of examples) {
        const runs = invocations(e.command);
        expect(runs.length, `"${e.command}" runs no secretsync`).to.be.greaterThan(0);
        for (const argv of runs) {
          let ran: string;
          try {
            ran = await parse(argv);
          } catch (err) {
            throw new Error(`example "${e.command}" does not parse: ${(err as Error).message}`);
          }
          if (ran === pathOf(cmd) || (ran === 'help' && argv.slice(0, -1).join(' ') === pathOf(cmd))) {
            runsThisCommand = true;
          }
        }
      }
      expect(runsThisCommand, `no example of ${path} runs ${path}`).to.equal(true);
    });
  }

  it('are printed at the end of --help, under the name the CLI was invoked by', async () => {
    const io = captureIo();
    expect(await main(['node', '/usr/local/bin/kubectl-secretsync', 'backup', '--help'], io)).to.equal(0);
    const help = io.outLines.join('\n');
    expect(help).to.match(/^Usage: kubectl secretsync backup \[options\]/m);
    expect(help).to.match(
      /\nExamples:\n {2}# .+\n {2}\$ openssl rand -out backup\.key 32 && kubectl secretsync backup --out/,
    );
    expect(help).to.not.match(/\$ secretsync /);
  });

  it('the program name is replaced only where secretsync is run', () => {
    expect(withProgramName('secretsync backup --operator-namespace secretsync-system', 'kubectl secretsync')).to.equal(
      'kubectl secretsync backup --operator-namespace secretsync-system',
    );
    expect(withProgramName('source <(secretsync completion bash)', 'x')).to.equal(
      'source <(secretsync completion bash)',
    );
  });

  it('a broken example is caught: an unknown option, a missing required option, a bad choice', async () => {
    for (const argv of [
      ['store', 'list', '--no-such-option'],
      ['backup', '--key-file', 'k'],
      ['encrypt', '--key', 'k', '--scope', 'galaxy'],
      ['rotate'],
    ]) {
      let failed = false;
      await parse(argv).catch(() => (failed = true));
      expect(failed, argv.join(' ')).to.equal(true);
    }
  });
});

describe('secretsync --help examples, run', function () {
  // Each line starts Node and compiles the CLI from source: about two seconds.
  this.timeout(120_000);

  it('the store examples run as printed, in a shell, one after another', () => {
    const program = buildProgram(captureIo());
    const store = program.commands.find((c) => c.name() === 'store');
    if (!store) throw new Error('no store command');
    const order = ['put', 'get', 'list', 'history', 'reseal', 'delete'];
    const lines = order
      .flatMap((name) => examplesOf(store.commands.find((c) => c.name() === name) ?? store) ?? [])
      .map((e) => e.command)
      // Those need a Kubernetes Secret; the parse test above covers them.
      .filter((line) => !line.includes('--master-key-secret'));
    expect(lines.length).to.be.greaterThan(8);
    const dir = mkdtempSync(join(tmpdir(), 'secretsync-examples-'));
    try {
      writeFileSync(join(dir, 'master.key'), randomBytes(32));
      writeFileSync(join(dir, 'db.json'), JSON.stringify({ username: 'app', password: 'example-password' }));
      writeFileSync(join(dir, 'password.txt'), 'example-password-2');
      // The loader by its URL: the shell runs in the temporary directory, where a bare "tsx" does not resolve.
      const tsx = import.meta.resolve('tsx');
      const cli = `${process.execPath} --import ${tsx} ${JSON.stringify(join(repo, 'src/cli/index.ts'))}`;
      const script = [
        'set -euo pipefail',
        `secretsync() { ${cli} "$@"; }`,
        ...lines.map((l) => `echo "+ ${l.replace(/["$`\\]/g, '\\$&')}" >&2; ${l}`),
      ].join('\n');
      const r = spawnSync('bash', ['-c', script], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, NODE_PATH: '' },
      });
      expect(r.status, r.stderr).to.equal(0);
      // get --property password printed the value put from password.txt; delete left nothing.
      expect(r.stdout).to.contain('example-password-2');
      expect(r.stdout).to.match(/^deleted app\/db$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
