// The CLI side of the IBM instance copy: store references as the commands take
// them, and the report lines (names and reasons only, dry-run wording, a
// summary with skipped secrets per type).
import { expect } from 'chai';
import { formatStoreRef, parseStoreRef, transferLines } from '../../../src/backup/ibm-instance.js';
import type { TransferReport } from '../../../src/providers/ibm-secrets-manager/copy.js';

describe('IBM instance copy: store references and report lines', () => {
  it('parses SecretStore/NAMESPACE/NAME and ClusterSecretStore/NAME, and refuses anything else', () => {
    expect(parseStoreRef('SecretStore/team-a/ibm')).to.deep.equal({
      kind: 'SecretStore',
      namespace: 'team-a',
      name: 'ibm',
    });
    expect(parseStoreRef('ClusterSecretStore/ibm-shared')).to.deep.equal({
      kind: 'ClusterSecretStore',
      name: 'ibm-shared',
    });
    for (const bad of [
      'ibm',
      'SecretStore/ibm',
      'ClusterSecretStore/a/b',
      'secretstore/a/b',
      'SecretStore/A/b',
      'SecretStore//b',
    ])
      expect(() => parseStoreRef(bad), bad).to.throw(
        /expected SecretStore\/NAMESPACE\/NAME or ClusterSecretStore\/NAME/,
      );
    for (const ref of ['SecretStore/team-a/ibm', 'ClusterSecretStore/x1'])
      expect(formatStoreRef(parseStoreRef(ref))).to.equal(ref);
  });

  const report: TransferReport = {
    dryRun: false,
    groupsCreated: ['payments'],
    items: [
      { what: 'payments/kv/config', type: 'kv', outcome: 'created' },
      { what: 'default/arbitrary/token', type: 'arbitrary', outcome: 'updated', note: 'value and metadata' },
      { what: 'default/arbitrary/same', type: 'arbitrary', outcome: 'unchanged' },
      { what: 'default/username_password/db', type: 'username_password', outcome: 'failed', note: 'HTTP 403' },
    ],
    skipped: [
      { group: 'default', name: 'www', type: 'public_cert', reason: 'ordered by IBM' },
      { group: 'default', name: 'ci', type: 'iam_credentials', reason: 'made by IBM' },
      { group: 'default', name: 'ci2', type: 'iam_credentials', reason: 'made by IBM' },
    ],
  };

  it('one line per secret and a summary with skipped secrets per type', () => {
    expect(transferLines(report, 'copy')).to.deep.equal([
      'created    secret group payments',
      'created    payments/kv/config',
      'updated    default/arbitrary/token (value and metadata)',
      'unchanged  default/arbitrary/same',
      'FAILED     default/username_password/db (HTTP 403)',
      'skipped    default/public_cert/www (ordered by IBM)',
      'skipped    default/iam_credentials/ci (made by IBM)',
      'skipped    default/iam_credentials/ci2 (made by IBM)',
      'copy: 1 created, 1 updated, 1 unchanged, 1 failed; 3 skipped (iam_credentials 2, public_cert 1)',
    ]);
  });

  it('a dry run says what would be written', () => {
    const lines = transferLines({ ...report, dryRun: true }, 'copy');
    expect(lines[0]).to.equal('would create  secret group payments');
    expect(lines[2]).to.equal('would update  default/arbitrary/token (value and metadata)');
    expect(lines.at(-1)).to.match(/^dry run, nothing written: copy: 1 created/);
  });
});
