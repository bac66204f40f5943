// npm run generate:crds: writes crds/*.yaml from src/api/schemas.ts, the same
// files into the Helm chart's files/crds/ (templates/crds.yaml renders them, so
// helm upgrade keeps them current), then docs/api.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCrds, crdFileName, renderCrdYaml } from '../src/api/crds.js';
import { writeApiDocs } from './generate-api-docs.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// A copy in the chart, not a link, so the chart stays self-contained. Not the chart's crds/:
// Helm would install that folder once, never upgrade it, and fail on the templated copies.
for (const dir of [join(root, 'crds'), join(root, 'charts', 'secretsync', 'files', 'crds')]) {
  mkdirSync(dir, { recursive: true });
  for (const crd of buildCrds()) {
    const file = join(dir, crdFileName(crd));
    writeFileSync(file, renderCrdYaml(crd));
    console.log(`wrote ${file}`);
  }
}
console.log(`wrote ${await writeApiDocs()}`);
