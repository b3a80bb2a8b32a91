import { describe, expect, it } from 'vitest';
import { boundedDistance, nearMatch } from '../src/runtime/doctor/similarity.js';

describe('near matches of keys', () => {
  it('tells a difference of case and of whitespace from a typo', () => {
    expect(nearMatch('INV-42', 'inv-42')).toEqual({ difference: 'case', distance: 0 });
    expect(nearMatch('INV- 42', 'INV-42')).toEqual({ difference: 'whitespace', distance: 0 });
    expect(nearMatch('payments.recieved', 'payments.received')).toEqual({ difference: 'typo', distance: 1 });
    expect(nearMatch('payments.receivd', 'payments.received')).toEqual({ difference: 'typo', distance: 1 });
    expect(nearMatch('INV-2026-0007', 'INV-2026-007')).toEqual({ difference: 'typo', distance: 1 });
  });

  it('counts a swap of two neighbours as one typo, and a digit for another digit as another id', () => {
    expect(boundedDistance('inv-0070', 'inv-0007', 2)).toBe(1);
    expect(nearMatch('INV-2026-0070', 'INV-2026-0007')).toEqual({ difference: 'typo', distance: 1 });
    expect(nearMatch('INV-9', 'INV-7')).toBeUndefined();
    expect(nearMatch('INV-2026-0042', 'INV-2026-0043')).toBeUndefined();
  });

  it('allows no typo in short keys and at most two in long ones', () => {
    expect(nearMatch('ab', 'ac')).toBeUndefined();
    expect(nearMatch('orders-one', 'ordrs-on')).toEqual({ difference: 'typo', distance: 2 });
    expect(nearMatch('orders-one', 'odrs-on')).toBeUndefined();
    expect(nearMatch('order-1', 'ordr-1')).toEqual({ difference: 'typo', distance: 1 });
    expect(nearMatch('order-1', 'odr-1x')).toBeUndefined();
    expect(nearMatch('same', 'same')).toBeUndefined();
  });
});
