// The test harness: real control planes and a real AWS-compatible endpoint for
// tests, the demo and the benchmarks.
export {
  TestCluster,
  type AuditEvent,
  type ClusterComponent,
  type ClusterRecord,
  type StartClusterOptions,
} from './cluster.js';
export { MotoServer, type AwsEnv, type StartMotoOptions } from './moto.js';
export { IbmSecretsManagerServer, type StartIbmSecretsManagerOptions } from './ibm-sm.js';
export { VaultServer, type StartVaultOptions, type VaultAnswer } from './vault.js';
export { PrometheusServer, type PromSample, type ScrapeJob, type StartPrometheusOptions } from './prometheus.js';
export {
  builtKubernetesVersion,
  ensureKubeClients,
  ensureKubeRawClient,
  ensureKubeTestenv,
  ensureMoto,
  ensurePrometheus,
  ensureVault,
  MOTO_VERSION,
  type KubeClients,
  type PrometheusTools,
} from './binaries.js';
export { waitFor, sleep, isPidAlive } from './processes.js';
export {
  awsErrorAnswer,
  HttpFaultProxy,
  TcpFaultProxy,
  statusAnswer,
  type Injected,
  type ProxiedRequest,
  type TcpProxyMode,
} from './proxy.js';
