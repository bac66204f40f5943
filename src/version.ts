import { readFileSync } from 'node:fs';

interface PackageJson {
  version: string;
}

/** The version from package.json, so the CLI, the image and the chart agree. */
export function packageVersion(): string {
  // src/ and dist/src/ sit at different depths; try both.
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as PackageJson & { name?: string };
      if (pkg.name === 'secretsync') return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0-unknown';
}
