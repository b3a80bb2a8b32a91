import { describe, expect, it } from 'vitest';
import { FlowError, FLOW_STATUSES, canMove, isTerminal, mergeState, type Flow, type FlowStatus } from '../src/index.js';
import { assertMove } from '../src/runtime/flow.js';

const legal: Array<[FlowStatus, FlowStatus]> = [
  ['created', 'running'],
  ['created', 'cancelled'],
  ['running', 'waiting'],
  ['running', 'finished'],
  ['running', 'failed'],
  ['running', 'cancelled'],
  ['waiting', 'running'],
  ['waiting', 'failed'],
  ['waiting', 'cancelled'],
];

function flowIn(status: FlowStatus, cancelRequested = false): Pick<Flow, 'id' | 'status' | 'cancelRequested'> {
  return { id: 'f', status, cancelRequested };
}

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return FlowError.isInstance(error) ? error.code : 'not a FlowError';
  }
}

describe('the flow state machine', () => {
  it('allows exactly the legal moves', () => {
    for (const from of FLOW_STATUSES) {
      for (const to of FLOW_STATUSES) {
        const expected = legal.some(([a, b]) => a === from && b === to);
        expect(canMove(from, to), `${from} → ${to}`).toBe(expected);
      }
    }
  });

  it('treats finished, failed and cancelled as terminal', () => {
    expect(FLOW_STATUSES.filter(isTerminal)).toEqual(['finished', 'failed', 'cancelled']);
  });

  it('refuses every move out of a terminal status with already_terminal', () => {
    for (const from of ['finished', 'failed', 'cancelled'] as const) {
      for (const to of FLOW_STATUSES) expect(codeOf(() => assertMove(flowIn(from), to))).toBe('already_terminal');
    }
  });

  it('refuses an illegal move with illegal_transition', () => {
    expect(codeOf(() => assertMove(flowIn('created'), 'waiting'))).toBe('illegal_transition');
    expect(codeOf(() => assertMove(flowIn('created'), 'finished'))).toBe('illegal_transition');
  });

  it('allows only cancellation once a cancel is requested', () => {
    for (const from of ['created', 'running', 'waiting'] as const) {
      expect(codeOf(() => assertMove(flowIn(from, true), 'cancelled'))).toBeUndefined();
      for (const to of ['running', 'waiting', 'finished', 'failed'] as const) {
        expect(codeOf(() => assertMove(flowIn(from, true), to))).toBe('cancel_pending');
      }
    }
  });

  it('merges state shallowly: top-level keys of the patch overwrite', () => {
    expect(mergeState({ a: 1, nested: { x: 1, y: 2 } }, { nested: { x: 9 }, b: 2 })).toEqual({ a: 1, b: 2, nested: { x: 9 } });
    expect(mergeState({ a: 1 }, undefined)).toEqual({ a: 1 });
  });
});
