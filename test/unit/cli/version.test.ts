import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { main } from '../../../src/cli/main.js';
import { captureIo } from '../helpers/index.js';

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
