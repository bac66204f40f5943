// The IBM Cloud Secrets Manager contract server (tools/ibm-sm-server/) in the
// test harness, started like moto: tests, the demo and benchmarks get a
// service URL and an IAM endpoint on 127.0.0.1. It runs in the test process
// (it is plain node:http with in-memory state), so tests can seed it, inject
// faults and read the recorded requests directly. Two servers made with the
// same signing key accept each other's IAM tokens, as two instances of one
// account accept tokens from the one global IAM.
import { randomBytes } from 'node:crypto';
import { IbmSecretsManagerContract, type ContractServerOptions } from '../ibm-sm-server/server.js';

export interface StartIbmSecretsManagerOptions {
  /** Share it between servers that must accept each other's tokens. Default: a new random key. */
  signingKey?: string;
  tokenLifetimeSeconds?: number;
  region?: string;
  instanceId?: string;
}

export class IbmSecretsManagerServer {
  private constructor(
    readonly contract: IbmSecretsManagerContract,
    private port: number,
    readonly signingKey: string,
  ) {}

  static async start(options: StartIbmSecretsManagerOptions = {}): Promise<IbmSecretsManagerServer> {
    const signingKey = options.signingKey ?? randomBytes(32).toString('hex');
    const contractOptions: ContractServerOptions = {
      signingKey,
      ...(options.tokenLifetimeSeconds !== undefined ? { tokenLifetimeSeconds: options.tokenLifetimeSeconds } : {}),
      ...(options.region !== undefined ? { region: options.region } : {}),
      ...(options.instanceId !== undefined ? { instanceId: options.instanceId } : {}),
    };
    const contract = new IbmSecretsManagerContract(contractOptions);
    const port = await contract.listen(0);
    return new IbmSecretsManagerServer(contract, port, signingKey);
  }

  /** The instance's service URL (what a store's `serviceUrl` names). */
  get serviceUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The IAM token endpoint's base URL (what a store's `iamEndpoint` names). */
  get iamEndpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** An outage: connections are cut and refused; the secrets stay for `restart()`. */
  async kill(): Promise<void> {
    await this.contract.close();
  }

  /** Answers again on the same port, with the state it had. */
  async restart(): Promise<void> {
    await this.contract.close();
    this.port = await this.contract.listen(this.port);
  }

  async stop(): Promise<void> {
    await this.contract.close();
  }
}
