// The change index: a changed key finds exactly the ManagedSecrets that read
// it (by name, by extract, or through a find spec that would list it), in its
// store only, and follows updates and deletes.
import { expect } from 'chai';
import fc from 'fast-check';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import { ChangeIndex, findMayList } from '../../../src/controller/change-index.js';

function ms(name: string, spec: Partial<ManagedSecret['spec']>, namespace = 'app'): ManagedSecret {
  return {
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    metadata: { name, namespace },
    spec: { storeRef: { name: 'local' }, ...spec },
  };
}

describe('ChangeIndex', () => {
  it('finds readers by data key, extract and find (prefix, pattern), per store', () => {
    const index = new ChangeIndex();
    index.set(ms('by-data', { data: [{ secretKey: 'p', remoteRef: { key: 'db/prod', property: 'password' } }] }));
    index.set(ms('by-extract', { dataFrom: [{ extract: { key: 'db/prod' } }] }));
    index.set(ms('by-prefix', { dataFrom: [{ find: { prefix: 'team/' } }] }));
    index.set(ms('by-pattern', { dataFrom: [{ find: { nameRegexp: '^svc-[0-9]+$' } }] }));
    index.set(
      ms('other-store', { storeRef: { name: 'other' }, data: [{ secretKey: 'p', remoteRef: { key: 'db/prod' } }] }),
    );
    index.set(
      ms('cluster', {
        storeRef: { kind: 'ClusterSecretStore', name: 'local' },
        data: [{ secretKey: 'p', remoteRef: { key: 'db/prod' } }],
      }),
    );
    expect([...index.usersOf('ss/app/local', ['db/prod'])].sort()).to.deep.equal([
      'ms/app/by-data',
      'ms/app/by-extract',
    ]);
    expect([...index.usersOf('ss/app/local', ['team/x'])]).to.deep.equal(['ms/app/by-prefix']);
    expect([...index.usersOf('ss/app/local', ['svc-12'])]).to.deep.equal(['ms/app/by-pattern']);
    expect([...index.usersOf('ss/app/local', ['svc-x', 'unused'])]).to.deep.equal([]);
    expect([...index.usersOf('ss/app/other', ['db/prod'])]).to.deep.equal(['ms/app/other-store']);
    expect([...index.usersOf('css/local', ['db/prod'])]).to.deep.equal(['ms/app/cluster']);
  });

  it('follows updates (keys and store) and deletes', () => {
    const index = new ChangeIndex();
    index.set(ms('a', { data: [{ secretKey: 'p', remoteRef: { key: 'one' } }] }));
    index.set(ms('a', { storeRef: { name: 'second' }, data: [{ secretKey: 'p', remoteRef: { key: 'two' } }] }));
    expect([...index.usersOf('ss/app/local', ['one'])]).to.deep.equal([]);
    expect([...index.usersOf('ss/app/second', ['two'])]).to.deep.equal(['ms/app/a']);
    index.remove('ms/app/a');
    expect([...index.usersOf('ss/app/second', ['two'])]).to.deep.equal([]);
    expect(index.size).to.equal(0);
  });

  it('ignores a find pattern RE2 refuses (the spec error is reported elsewhere)', () => {
    const index = new ChangeIndex();
    index.set(ms('bad', { dataFrom: [{ find: { nameRegexp: '(?=x)' } }] }));
    expect([...index.usersOf('ss/app/local', ['x'])]).to.deep.equal([]);
  });

  it('agrees with a brute-force scan of every ManagedSecret (property)', () => {
    const keyArb = fc.constantFrom('a', 'a/b', 'a/c', 'b', 'b/a', 'c');
    const specArb = fc.record({
      data: fc.array(keyArb, { maxLength: 3 }),
      extract: fc.array(keyArb, { maxLength: 2 }),
      prefixes: fc.array(fc.constantFrom('a/', 'b', 'c/'), { maxLength: 2 }),
      store: fc.constantFrom('s1', 's2'),
    });
    fc.assert(
      fc.property(
        fc.array(specArb, { maxLength: 12 }),
        fc.array(keyArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom('s1', 's2'),
        (specs, changed, store) => {
          const index = new ChangeIndex();
          const all = specs.map((s, i) =>
            ms(`m${i}`, {
              storeRef: { name: s.store },
              data: s.data.map((k, j) => ({ secretKey: `k${j}`, remoteRef: { key: k } })),
              dataFrom: [
                ...s.extract.map((k) => ({ extract: { key: k } })),
                ...s.prefixes.map((p) => ({ find: { prefix: p } })),
              ],
            }),
          );
          for (const m of all) index.set(m);
          const expected = all
            .filter((m, i) => specs[i]?.store === store)
            .filter((m) =>
              changed.some(
                (k) =>
                  (m.spec.data ?? []).some((d) => d.remoteRef?.key === k) ||
                  (m.spec.dataFrom ?? []).some(
                    (d) => d.extract?.key === k || (d.find !== undefined && findMayList(d.find, k)),
                  ),
              ),
            )
            .map((m) => `ms/app/${m.metadata.name}`)
            .sort();
          expect([...index.usersOf(`ss/app/${store}`, changed)].sort()).to.deep.equal(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
