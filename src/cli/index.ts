// Entry point for running the CLI from source (tests, `tsx src/cli/index.ts ...`).
import { main } from './main.js';

process.exitCode = await main(process.argv);
