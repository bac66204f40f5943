// npm run generate:crds: writes crds/*.yaml from src/api/schemas.ts, then docs/api.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCrds, crdFileName, renderCrdYaml } from '../src/api/crds.js';
import { writeApiDocs } from './generate-api-docs.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, 'crds');
mkdirSync(dir, { recursive: true });
for (const crd of buildCrds()) {
  const file = join(dir, crdFileName(crd));
  writeFileSync(file, renderCrdYaml(crd));
  console.log(`wrote ${file}`);
}
console.log(`wrote ${await writeApiDocs()}`);
