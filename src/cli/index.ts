// Entry point for running the CLI from source (tests, `tsx src/cli/index.ts ...`).
import { main } from './main.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await main(process.argv);
