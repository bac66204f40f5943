import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../tools/testenv/paths.js';

const execFileAsync = promisify(execFile);

describe('the quick-start demo (tools/demo.ts)', function () {
  this.timeout(180_000);

  it('syncs the examples into a Secret on its own control plane, prints it, and cleans up', async () => {
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', join(repoRoot, 'tools', 'demo.ts')], {
      cwd: repoRoot,
      timeout: 170_000,
    });
    expect(stdout).to.match(/DATABASE_URL: postgres:\/\/app:correct-horse-battery-staple@db\.app\.svc:5432\/app/);
    expect(stdout).to.match(/smtp-password: mail-secret/);
    expect(stdout).to.match(/"reason": "Synced"/);
    expect(stdout).to.contain('removed every temporary file');
  });
});
