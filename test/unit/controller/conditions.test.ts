import { expect } from 'chai';
import type { Condition } from '../../../src/api/types.js';
import { getCondition, setCondition } from '../../../src/controller/conditions.js';

const T0 = new Date('2024-03-05T10:00:00.123Z');
const T1 = new Date('2024-03-05T11:30:00.456Z');

const ready = (status: Condition['status'], extra: Partial<Condition> = {}): Omit<Condition, 'lastTransitionTime'> => ({
  type: 'Ready',
  status,
  reason: status === 'True' ? 'Synced' : 'ProviderError',
  message: status === 'True' ? 'in sync' : 'store unreachable',
  observedGeneration: 1,
  ...extra,
});

describe('conditions', () => {
  describe('setCondition', () => {
    it('adds a condition to an absent list, stamped with the time in whole seconds', () => {
      const { conditions, changed } = setCondition(undefined, ready('True'), T0);
      expect(changed).to.equal(true);
      expect(conditions).to.deep.equal([{ ...ready('True'), lastTransitionTime: '2024-03-05T10:00:00Z' }]);
    });

    it('keeps lastTransitionTime when the status is unchanged', () => {
      const first = setCondition([], ready('False'), T0).conditions;
      const { conditions, changed } = setCondition(first, ready('False', { message: 'still unreachable' }), T1);
      expect(conditions[0]?.lastTransitionTime).to.equal('2024-03-05T10:00:00Z');
      expect(conditions[0]?.message).to.equal('still unreachable');
      expect(changed).to.equal(true);
    });

    it('changes lastTransitionTime when the status flips', () => {
      const first = setCondition([], ready('False'), T0).conditions;
      const { conditions, changed } = setCondition(first, ready('True'), T1);
      expect(changed).to.equal(true);
      expect(conditions).to.have.length(1);
      expect(conditions[0]).to.deep.equal({ ...ready('True'), lastTransitionTime: '2024-03-05T11:30:00Z' });
    });

    it('reports no change when the condition is identical (whatever the time)', () => {
      const first = setCondition([], ready('True'), T0).conditions;
      const { conditions, changed } = setCondition(first, ready('True'), T1);
      expect(changed).to.equal(false);
      expect(conditions).to.deep.equal(first);
    });

    for (const field of ['reason', 'message', 'observedGeneration'] as const) {
      it(`reports a change of ${field} alone, keeping lastTransitionTime`, () => {
        const first = setCondition([], ready('True'), T0).conditions;
        const next = ready('True', field === 'observedGeneration' ? { observedGeneration: 2 } : { [field]: 'other' });
        const { conditions, changed } = setCondition(first, next, T1);
        expect(changed).to.equal(true);
        expect(conditions[0]?.lastTransitionTime).to.equal('2024-03-05T10:00:00Z');
        expect(conditions[0]?.[field]).to.equal(next[field]);
      });
    }

    it('touches only the condition of the same type, and does not change the list it was given', () => {
      const given: Condition[] = [
        { type: 'Ready', status: 'True', reason: 'Synced', message: 'ok', lastTransitionTime: '2024-01-01T00:00:00Z' },
        { type: 'Other', status: 'False', reason: 'X', message: 'y', lastTransitionTime: '2024-01-01T00:00:00Z' },
      ];
      const snapshot = structuredClone(given);
      const { conditions } = setCondition(given, { type: 'Other', status: 'True', reason: 'Z', message: 'w' }, T1);
      expect(given).to.deep.equal(snapshot);
      expect(conditions).to.deep.equal([
        snapshot[0],
        { type: 'Other', status: 'True', reason: 'Z', message: 'w', lastTransitionTime: '2024-03-05T11:30:00Z' },
      ]);
    });

    it('appends a condition of a new type', () => {
      const first = setCondition([], ready('True'), T0).conditions;
      const { conditions, changed } = setCondition(
        first,
        { type: 'Stalled', status: 'False', reason: 'R', message: 'm' },
        T1,
      );
      expect(changed).to.equal(true);
      expect(conditions.map((c) => c.type)).to.deep.equal(['Ready', 'Stalled']);
    });
  });

  describe('getCondition', () => {
    it('finds a condition by type, or undefined', () => {
      const { conditions } = setCondition([], ready('True'), T0);
      expect(getCondition(conditions, 'Ready')?.status).to.equal('True');
      expect(getCondition(conditions, 'Missing')).to.equal(undefined);
      expect(getCondition(undefined, 'Ready')).to.equal(undefined);
    });
  });
});
