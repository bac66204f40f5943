import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { buildProgram } from '../../../src/cli/main.js';

describe('secretsync version', () => {
  it('prints the version from package.json', async () => {
    const lines: string[] = [];
    await buildProgram((l) => lines.push(l)).parseAsync(['node', 'secretsync', 'version']);
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(new RegExp(`^secretsync ${pkg.version.replace(/\./g, '\\.')} \\(node v\\d+`));
  });

  it('rejects an unknown command', async () => {
    const program = buildProgram(() => undefined);
    program.configureOutput({ writeErr: () => undefined });
    let failed = false;
    try {
      await program.parseAsync(['node', 'secretsync', 'no-such-command']);
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
  });
});
