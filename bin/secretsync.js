#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ after `npm run build`.
// We run on Node 20 on purpose; the AWS SDK's notice about its future Node 22 floor is not for our users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import('../dist/src/cli/main.js')
  .then(async (m) => {
    process.exitCode = await m.main(process.argv);
  })
  .catch((err) => {
    console.error(`secretsync: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
