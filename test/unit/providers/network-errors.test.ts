import { expect } from 'chai';
import { isNodeNetworkError } from '../../../src/providers/network-errors.js';

const coded = (code: string) => Object.assign(new Error('connect failed'), { code });

describe('providers: which errors mean an endpoint is unreachable', () => {
  it('knows Node network codes and a bare "socket hang up"', () => {
    expect(isNodeNetworkError(coded('ECONNREFUSED'))).to.equal(true);
    expect(isNodeNetworkError(coded('UND_ERR_SOCKET'))).to.equal(true);
    expect(isNodeNetworkError(new Error('socket hang up'))).to.equal(true);
  });

  it('counts an AggregateError only when every attempt failed on the network', () => {
    expect(isNodeNetworkError(new AggregateError([coded('ECONNREFUSED'), coded('ETIMEDOUT')]))).to.equal(true);
    expect(
      isNodeNetworkError(new AggregateError([coded('ECONNREFUSED'), coded('ERR_TLS_CERT_ALTNAME_INVALID')])),
    ).to.equal(false);
    expect(isNodeNetworkError(new AggregateError([]))).to.equal(false);
  });

  it('takes a backend’s own codes, and refuses TLS failures, answers and non-errors', () => {
    expect(isNodeNetworkError(coded('ERR_REQUEST_TIMEOUT'))).to.equal(false);
    expect(isNodeNetworkError(coded('ERR_REQUEST_TIMEOUT'), new Set(['ERR_REQUEST_TIMEOUT']))).to.equal(true);
    expect(isNodeNetworkError(coded('DEPTH_ZERO_SELF_SIGNED_CERT'))).to.equal(false);
    expect(isNodeNetworkError(Object.assign(new Error('permission denied'), { statusCode: 403 }))).to.equal(false);
    expect(isNodeNetworkError(undefined)).to.equal(false);
    expect(isNodeNetworkError('ECONNRESET')).to.equal(false);
  });
});
