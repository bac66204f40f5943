import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { API_DOCS_PATH, renderApiDocs } from '../../../tools/generate-api-docs.js';
import { KINDS } from '../../../src/api/schemas.js';
import { walkProperties } from './schema-check.js';

describe('docs/api.md', () => {
  let rendered: string;
  before(async function () {
    this.timeout(20_000); // prettier's first load
    rendered = await renderApiDocs();
  });

  it('is up to date with the schemas and examples', () => {
    expect(
      readFileSync(API_DOCS_PATH, 'utf8') === rendered,
      'docs/api.md is stale: run npm run generate:crds',
    ).to.equal(true);
  });

  it('has a row for every field of spec and status, and a YAML example for each kind', () => {
    for (const def of KINDS) {
      expect(rendered).to.contain(`## ${def.kind}`);
      walkProperties(def.schema, (path) => {
        if (path.startsWith('spec') || path.startsWith('status')) expect(rendered, path).to.contain(`| \`${path}\``);
      });
      expect(rendered).to.contain(`kind: ${def.kind}\n`);
    }
    expect(rendered.match(/```yaml/g)?.length ?? 0).to.be.greaterThanOrEqual(KINDS.length);
  });
});
