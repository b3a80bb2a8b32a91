import { describe, expect, it } from 'vitest';
import type { TaskflowToolResult } from '../src/index.js';
import { T0 } from './support/taskflow.js';
import { flowOf, openToolFixture, snapshotDatabase, startInput } from './support/tool-fixtures.js';

const iso = (ms: number) => new Date(ms).toISOString();
const DAY = 86_400_000;

/** "Resume on payments.received/INV-42 or the cancel_order signal, or remind me in 3 days." */
const firstOf = {
  kind: 'any',
  of: [
    { kind: 'external_event', topic: 'payments.received', correlation_id: 'INV-42' },
    { kind: 'manual', signal: 'cancel_order' },
    { kind: 'timer', in: '3d' },
  ],
};

function refused(result: TaskflowToolResult, error: string): string {
  expect(result).toMatchObject({ ok: false, error });
  return (result as { message: string }).message;
}

describe('taskflow tool: waiting on the first of several conditions', () => {
  it('parks the flow on all the conditions, and status shows each of them', async () => {
    const { tool } = await openToolFixture({ topics: ['payments.>'] });
    const { id } = flowOf(await tool.call(startInput));
    const waiting = flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: firstOf }));
    const wait = {
      kind: 'any',
      of: [
        { kind: 'external_event', topic: 'payments.received', correlation_id: 'INV-42' },
        { kind: 'manual', signal: 'cancel_order' },
        { kind: 'timer', at: iso(T0 + 3 * DAY) },
      ],
    };
    expect(waiting).toMatchObject({ status: 'waiting', wait });
    expect(flowOf(await tool.call({ action: 'status', flow_id: id })).wait).toEqual(wait);
  });

  it('shows in last_wake which condition won', async () => {
    const { tf, tool } = await openToolFixture({ topics: ['payments.>'] });
    const { id } = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: id, wait_condition: firstOf });
    await tf.engine.signal(id, { signal: 'cancel_order' });
    const resumed = flowOf(await tool.call({ action: 'status', flow_id: id }));
    expect(resumed).toMatchObject({ status: 'running', wait: null, last_wake: { reason: 'signal', signal: 'cancel_order', condition: { index: 1, kind: 'manual' } } });
  });

  it('gates each event condition by the binding topics, as a single event wait is, and changes nothing when refused', async () => {
    const { tf, tool } = await openToolFixture({ topics: ['payments.>'] });
    const { id } = flowOf(await tool.call(startInput));
    const before = snapshotDatabase(tf.path);
    const outside = {
      kind: 'any',
      of: [
        { kind: 'manual', signal: 'cancel_order' },
        { kind: 'external_event', topic: 'orders.shipped', correlation_id: 'O-1' },
      ],
    };
    expect(refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: outside }), 'topic_not_allowed')).toMatch(/allowed topics: payments\.>/);
    expect(snapshotDatabase(tf.path)).toEqual(before);
  });

  it('refuses event conditions where the host declared no topics, but allows signals and a timer', async () => {
    const { tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: firstOf }), 'topic_not_allowed');
    const noEvents = { kind: 'any', of: [{ kind: 'manual', signal: 'cancel_order' }, { kind: 'timer', in: '3d' }] };
    expect(flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: noEvents })).status).toBe('waiting');
  });

  it.each<[string, unknown, RegExp]>([
    ['no conditions', { kind: 'any', of: [] }, /of, a list of 1 to 16 conditions/],
    ['a timeout inside a condition', { kind: 'any', of: [{ kind: 'manual', signal: 'a', timeout_in: '1d' }] }, /of\[0\]\.timeout_in does not apply/],
    ['a manual condition without a name', { kind: 'any', of: [{ kind: 'manual' }] }, /of\[0\]\.signal/],
    ['a nested any', { kind: 'any', of: [{ kind: 'any', of: [] }] }, /cannot be another any wait/],
    ['a condition twice', { kind: 'any', of: [{ kind: 'manual', signal: 'a' }, { kind: 'manual', signal: 'a' }] }, /of\[1\] is the same condition as of\[0\]/],
    ['a timer beyond the horizon', { kind: 'any', of: [{ kind: 'timer', in: '90d' }] }, /beyond the horizon/],
    ['fields of a single wait beside of', { kind: 'any', of: [{ kind: 'manual', signal: 'a' }], signal: 'a' }, /signal does not apply to a any wait/],
  ])('refuses %s with a message that says what to fix', async (_what, condition, message) => {
    const { tf, tool } = await openToolFixture({ topics: ['payments.>'] });
    const { id } = flowOf(await tool.call(startInput));
    const before = snapshotDatabase(tf.path);
    expect(refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: condition }), 'invalid_input')).toMatch(message);
    expect(snapshotDatabase(tf.path)).toEqual(before);
  });

  it('describes the any wait to the model, in the description and the input schema', async () => {
    const { tool } = await openToolFixture({ topics: ['payments.>'] });
    expect(tool.description).toContain('"kind":"any","of":[');
    const wait = tool.inputJsonSchema.properties.wait_condition as { properties: Record<string, { enum?: string[] }> };
    expect(wait.properties.kind!.enum).toContain('any');
    expect(wait.properties.of).toMatchObject({ type: 'array', items: { type: 'object' } });
  });
});
