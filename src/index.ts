// Library entry point; the operator's modules are exported here as they land.
export { packageVersion } from './version.js';
