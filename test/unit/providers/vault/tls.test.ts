// VaultHttp's TLS against a local HTTPS server that demands a client
// certificate (Vault's dev server cannot be made to): the store's CA, client
// certificate and serverName reach the handshake, and a name or CA that does
// not match fails closed as a configuration error.
import { expect } from 'chai';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RegionHealth } from '../../../../src/providers/failover.js';
import { ProviderConfigError } from '../../../../src/providers/provider.js';
import { VaultHttp, type VaultTlsMaterial } from '../../../../src/providers/vault/http.js';
import { generateClusterPki, type ClusterPki } from '../../../../tools/testenv/certs.js';
import { rejectionOf } from '../../helpers/index.js';

describe('VaultHttp TLS (CA, client certificate, serverName)', function () {
  this.timeout(20_000);
  let pki: ClusterPki;
  let other: ClusterPki;
  let server: Server;
  let address = '';
  const clientNames: string[] = [];

  const client = (tls: VaultTlsMaterial) =>
    new VaultHttp({
      store: 'tls-test',
      addresses: [address],
      tls,
      breaker: { failureThreshold: 5, openSeconds: 30 },
      timeouts: { connectMs: 2000, requestMs: 4000 },
      health: new RegionHealth(),
    });

  before(async () => {
    pki = await generateClusterPki('vault-tls');
    other = await generateClusterPki('other');
    server = createServer(
      {
        cert: pki.serving.certPem,
        key: pki.serving.keyPem,
        ca: pki.ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        clientNames.push(String(peer.subject?.CN ?? ''));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('presents the client certificate and checks the server against the store CA and serverName', async () => {
    const http = client({
      ca: pki.ca.certPem,
      cert: pki.admin.certPem,
      key: pki.admin.keyPem,
      serverName: 'kubernetes.default.svc',
    });
    expect(await http.request('GET', 'sys/health', { anonymous: true })).to.deep.equal({ ok: true });
    expect(clientNames).to.deep.equal(['admin']);
    http.close();
  });

  it('fails closed: another CA or a name the certificate does not carry is a configuration error', async () => {
    const wrongCa = client({ ca: other.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem });
    const untrusted = await rejectionOf(wrongCa.request('GET', 'sys/health', { anonymous: true }));
    expect(untrusted).to.be.instanceOf(ProviderConfigError);
    expect(untrusted.message).to.contain('TLS failed');
    wrongCa.close();

    const wrongName = client({
      ca: pki.ca.certPem,
      cert: pki.admin.certPem,
      key: pki.admin.keyPem,
      serverName: 'vault.example',
    });
    const mismatch = await rejectionOf(wrongName.request('GET', 'sys/health', { anonymous: true }));
    expect(mismatch).to.be.instanceOf(ProviderConfigError);
    expect(mismatch.message).to.contain('ERR_TLS_CERT_ALTNAME_INVALID');
    wrongName.close();
  });

  it('without the client certificate the server refuses the handshake: a configuration error too', async () => {
    const http = client({ ca: pki.ca.certPem });
    const refused = await rejectionOf(http.request('GET', 'sys/health', { anonymous: true }));
    expect(refused).to.be.instanceOf(ProviderConfigError);
    expect(refused.message).to.contain('TLS failed');
    expect(clientNames).to.have.length(1, 'no request got through without a certificate');
    http.close();
  });
});
