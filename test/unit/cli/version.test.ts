import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { main, type CliIo } from '../../../src/cli/main.js';

function captureIo(): CliIo & { outLines: string[]; errLines: string[] } {
  const outLines: string[] = [];
  const errLines: string[] = [];
  return {
    outLines,
    errLines,
    out: (l) => outLines.push(l),
    err: (l) => errLines.push(l),
    readStdin: async () => Buffer.alloc(0),
  };
}

describe('secretsync CLI', () => {
  it('version prints the version from package.json', async () => {
    const io = captureIo();
    expect(await main(['node', 'secretsync', 'version'], io)).to.equal(0);
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(io.outLines).to.have.length(1);
    expect(io.outLines[0]).to.match(new RegExp(`^secretsync ${pkg.version.replace(/\./g, '\\.')} \\(node v\\d+`));
  });

  it('an unknown command exits non-zero with an error line', async () => {
    const io = captureIo();
    expect(await main(['node', 'secretsync', 'no-such-command'], io)).to.not.equal(0);
    expect(io.errLines.join('\n')).to.match(/unknown command 'no-such-command'/);
  });
});
