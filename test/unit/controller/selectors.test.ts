import { expect } from 'chai';
import type { LabelSelector } from '../../../src/api/types.js';
import { namespaceAllowed, selectorMatches } from '../../../src/controller/selectors.js';

describe('selectors', () => {
  describe('selectorMatches', () => {
    it('matches everything with an empty selector', () => {
      expect(selectorMatches({}, {})).to.equal(true);
      expect(selectorMatches({}, { any: 'thing' })).to.equal(true);
    });

    it('requires every matchLabels entry', () => {
      const selector: LabelSelector = { matchLabels: { team: 'a', env: 'prod' } };
      expect(selectorMatches(selector, { team: 'a', env: 'prod', extra: 'x' })).to.equal(true);
      expect(selectorMatches(selector, { team: 'a' })).to.equal(false);
      expect(selectorMatches(selector, { team: 'a', env: 'dev' })).to.equal(false);
      expect(selectorMatches(selector, {})).to.equal(false);
    });

    it('does not treat inherited object properties as labels', () => {
      expect(selectorMatches({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, {})).to.equal(false);
      expect(selectorMatches({ matchExpressions: [{ key: 'toString', operator: 'DoesNotExist' }] }, {})).to.equal(true);
      expect(selectorMatches({ matchLabels: { toString: 'x' } }, {})).to.equal(false);
    });

    it('In: the label is present with one of the values', () => {
      const selector: LabelSelector = { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'stage'] }] };
      expect(selectorMatches(selector, { env: 'prod' })).to.equal(true);
      expect(selectorMatches(selector, { env: 'stage' })).to.equal(true);
      expect(selectorMatches(selector, { env: 'dev' })).to.equal(false);
      expect(selectorMatches(selector, {})).to.equal(false);
      // An empty value is a value like any other; a missing label is not an empty one.
      expect(selectorMatches({ matchExpressions: [{ key: 'env', operator: 'In', values: [''] }] }, {})).to.equal(false);
      expect(
        selectorMatches({ matchExpressions: [{ key: 'env', operator: 'In', values: [''] }] }, { env: '' }),
      ).to.equal(true);
    });

    it('NotIn: the label is absent or has none of the values', () => {
      const selector: LabelSelector = { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] };
      expect(selectorMatches(selector, { env: 'dev' })).to.equal(true);
      expect(selectorMatches(selector, {})).to.equal(true);
      expect(selectorMatches(selector, { env: 'prod' })).to.equal(false);
      const notEmpty: LabelSelector = { matchExpressions: [{ key: 'env', operator: 'NotIn', values: [''] }] };
      expect(selectorMatches(notEmpty, {})).to.equal(true);
      expect(selectorMatches(notEmpty, { env: '' })).to.equal(false);
    });

    it('Exists: the label is present, whatever its value', () => {
      const selector: LabelSelector = { matchExpressions: [{ key: 'env', operator: 'Exists' }] };
      expect(selectorMatches(selector, { env: '' })).to.equal(true);
      expect(selectorMatches(selector, { env: 'prod' })).to.equal(true);
      expect(selectorMatches(selector, { other: 'prod' })).to.equal(false);
    });

    it('DoesNotExist: the label is absent', () => {
      const selector: LabelSelector = { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] };
      expect(selectorMatches(selector, {})).to.equal(true);
      expect(selectorMatches(selector, { other: 'x' })).to.equal(true);
      expect(selectorMatches(selector, { env: '' })).to.equal(false);
    });

    it('requires matchLabels and every expression together', () => {
      const selector: LabelSelector = {
        matchLabels: { team: 'a' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod'] },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      };
      expect(selectorMatches(selector, { team: 'a', env: 'prod' })).to.equal(true);
      expect(selectorMatches(selector, { team: 'b', env: 'prod' })).to.equal(false);
      expect(selectorMatches(selector, { team: 'a', env: 'dev' })).to.equal(false);
      expect(selectorMatches(selector, { team: 'a', env: 'prod', legacy: 'true' })).to.equal(false);
    });
  });

  describe('namespaceAllowed', () => {
    it('allows every namespace when there are no conditions', () => {
      expect(namespaceAllowed(undefined, 'team-a', undefined)).to.equal(true);
      expect(namespaceAllowed([], 'team-a', { any: 'thing' })).to.equal(true);
    });

    it('allows a namespace named in a condition', () => {
      const conditions = [{ namespaces: ['team-a', 'team-b'] }];
      expect(namespaceAllowed(conditions, 'team-b', undefined)).to.equal(true);
      expect(namespaceAllowed(conditions, 'team-c', undefined)).to.equal(false);
    });

    it('allows a namespace whose labels match a condition selector', () => {
      const conditions = [{ namespaceSelector: { matchLabels: { 'secretsync.io/allowed': 'true' } } }];
      expect(namespaceAllowed(conditions, 'team-a', { 'secretsync.io/allowed': 'true' })).to.equal(true);
      expect(namespaceAllowed(conditions, 'team-a', { 'secretsync.io/allowed': 'false' })).to.equal(false);
      expect(namespaceAllowed(conditions, 'team-a', {})).to.equal(false);
      // Labels unknown (the namespace is not in the cache): a selector cannot match.
      expect(namespaceAllowed(conditions, 'team-a', undefined)).to.equal(false);
    });

    it('allows a namespace when any one condition matches', () => {
      const conditions = [
        { namespaces: ['team-a'] },
        { namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['gold'] }] } },
      ];
      expect(namespaceAllowed(conditions, 'team-a', {})).to.equal(true);
      expect(namespaceAllowed(conditions, 'team-z', { tier: 'gold' })).to.equal(true);
      expect(namespaceAllowed(conditions, 'team-z', { tier: 'silver' })).to.equal(false);
    });

    it('denies a namespace no condition matches', () => {
      const conditions = [{ namespaces: ['team-a'], namespaceSelector: { matchLabels: { env: 'prod' } } }];
      expect(namespaceAllowed(conditions, 'team-b', { env: 'dev' })).to.equal(false);
      // A condition with neither names nor a selector matches nothing.
      expect(namespaceAllowed([{}], 'team-b', { env: 'dev' })).to.equal(false);
    });
  });
});
