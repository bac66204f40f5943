#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ after `npm run build`.
import('../dist/src/cli/main.js')
  .then(async (m) => {
    process.exitCode = await m.main(process.argv);
  })
  .catch((err) => {
    console.error(`secretsync: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
