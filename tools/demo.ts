// The quick-start demo. For now it proves the local ground is real: a Kubernetes
// control plane built from source and an AWS endpoint, both on 127.0.0.1.
// The operator issue turns this into the full ManagedSecret → Secret demo.
import { CreateKeyCommand, DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { CoreV1Api } from '@kubernetes/client-node';
import { MotoServer, TestCluster } from './testenv/index.js';

// We run on Node 20 on purpose (see README); the SDK's notice about its future Node 22 floor is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const started = Date.now();
console.log('starting etcd, kube-apiserver, kube-controller-manager and moto_server on 127.0.0.1 ...');
const [cluster, moto] = await Promise.all([TestCluster.start({ name: 'demo' }), MotoServer.start()]);
try {
  console.log(`control plane up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`  kube-apiserver ${cluster.version} at ${cluster.server} (RBAC on)`);
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  const namespaces = await core.listNamespace();
  console.log(`  namespaces: ${namespaces.items.map((n) => n.metadata?.name).join(', ')}`);

  const kms = new KMSClient(moto.clientConfig());
  const key = await kms.send(new CreateKeyCommand({ Description: 'secretsync demo' }));
  const context = { namespace: 'demo' };
  const sealed = await kms.send(
    new EncryptCommand({ KeyId: key.KeyMetadata?.KeyId, Plaintext: Buffer.from('hello'), EncryptionContext: context }),
  );
  const opened = await kms.send(
    new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context }),
  );
  const roundTrip = Buffer.from(opened.Plaintext ?? []).toString() === 'hello';
  console.log(`  moto_server at ${moto.endpoint}: KMS encrypt/decrypt round trip ${roundTrip ? 'ok' : 'FAILED'}`);
  if (!roundTrip) process.exitCode = 1;
} finally {
  await Promise.all([cluster.stop(), moto.stop()]);
  console.log('stopped and cleaned up');
}
