import { describe, expect, it } from 'vitest';
import { createTaskflowTool, FlowError, TASKFLOW_ACTIONS, type TaskflowToolResult } from '../src/index.js';
import { T0 } from './support/taskflow.js';
import { flowOf, openToolFixture, OTHER_OWNER, OWNER, snapshotDatabase, startInput } from './support/tool-fixtures.js';

const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function refused(result: TaskflowToolResult, error: string): string {
  expect(result).toMatchObject({ ok: false, error });
  return (result as { message: string }).message;
}

describe('taskflow tool: actions', () => {
  it('start creates a running flow owned by the session, in the snake_case wire format without a revision', async () => {
    const { tf, tool } = await openToolFixture({ requesterOrigin: 'slack:#ops' });
    const result = await tool.call({ ...startInput, current_step: 'intake', state: { order: 42 } });
    expect(result).toEqual({
      ok: true,
      now: iso(T0),
      flow: {
        id: expect.any(String),
        controller_id: 'kate/shipping',
        goal: startInput.goal,
        current_step: 'intake',
        status: 'running',
        cancel_requested: false,
        state: { order: 42 },
        wait: null,
        created_at: iso(T0),
        updated_at: iso(T0),
      },
    });
    const stored = await tf.manager.get(flowOf(result).id);
    expect(stored).toMatchObject({ ownerSessionKey: OWNER, requesterOrigin: 'slack:#ops', revision: 1 });
  });

  it('start with the same idempotency_key returns the same flow and creates no second one', async () => {
    const { tf, tool } = await openToolFixture();
    const first = flowOf(await tool.call({ ...startInput, idempotency_key: 'order-42' }));
    const again = flowOf(await tool.call({ ...startInput, idempotency_key: 'order-42' }));
    expect(again.id).toBe(first.id);
    expect(again.status).toBe('running');
    expect(await tf.manager.listByOwner(OWNER)).toHaveLength(1);
  });

  it('status reads the flow; advance merges the patch and relabels the step', async () => {
    const { tool } = await openToolFixture();
    const { id } = flowOf(await tool.call({ ...startInput, state: { order: 42 } }));
    expect(flowOf(await tool.call({ action: 'status', flow_id: id })).state).toEqual({ order: 42 });
    const advanced = flowOf(await tool.call({ action: 'advance', flow_id: id, patch: { invoice: 'INV-42' }, current_step: 'await_payment' }));
    expect(advanced).toMatchObject({ current_step: 'await_payment', state: { order: 42, invoice: 'INV-42' }, status: 'running' });
  });

  it('wait on a timer given as "in" parks the flow until the timer fires, then shows why it resumed', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    const waiting = flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'timer', in: '90m' } }));
    expect(waiting).toMatchObject({ status: 'waiting', wait: { kind: 'timer', at: iso(T0 + 90 * 60_000) } });
    expect(waiting.last_wake).toBeUndefined();
    tf.clock.set(T0 + 90 * 60_000);
    await tf.engine.tick();
    const resumed = await tool.call({ action: 'status', flow_id: id });
    expect(resumed).toMatchObject({
      now: iso(T0 + 90 * 60_000),
      flow: { status: 'running', wait: null, last_wake: { reason: 'timer', at: iso(T0 + 90 * 60_000) } },
    });
  });

  it('wait on a timer given as "at" (RFC 3339 with an offset)', async () => {
    const { tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    const waiting = flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'timer', at: '2026-01-02T09:00:00+02:00' } }));
    expect(waiting.wait).toEqual({ kind: 'timer', at: '2026-01-02T07:00:00.000Z' });
  });

  it('wait on an external event resumes when the event is delivered, with its payload and why', async () => {
    const { tf, tool } = await openToolFixture({ topics: ['payments.>'] });
    const { id } = flowOf(await tool.call(startInput));
    const waiting = flowOf(
      await tool.call({
        action: 'wait',
        flow_id: id,
        wait_condition: { kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', timeout_in: '7d' },
      }),
    );
    expect(waiting.wait).toEqual({ kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', timeout_at: iso(T0 + 7 * DAY) });
    tf.clock.set(T0 + HOUR);
    await tf.engine.deliver({ topic: 'payments.invoice.paid', correlationId: 'INV-42', payload: { amount: 120 } });
    const flow = flowOf(await tool.call({ action: 'status', flow_id: id }));
    expect(flow).toMatchObject({
      status: 'running',
      state: { resume_event: { amount: 120 } },
      last_wake: { reason: 'event', at: iso(T0 + HOUR), topic: 'payments.invoice.paid', correlation_id: 'INV-42', payload: { amount: 120 } },
    });
  });

  it('an event wait times out at timeout_at and says so', async () => {
    const { tf, tool } = await openToolFixture({ topics: ['payments.>'] });
    const { id } = flowOf(await tool.call(startInput));
    const timeoutAt = iso(T0 + DAY);
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'external_event', topic: 'payments.invoice.paid', correlation_id: 'INV-42', timeout_at: timeoutAt } });
    tf.clock.set(T0 + DAY);
    await tf.engine.tick();
    expect(flowOf(await tool.call({ action: 'status', flow_id: id })).last_wake).toEqual({ reason: 'timeout', at: timeoutAt });
  });

  it('a manual wait resumes on its signal, with the signal name and payload', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    const waiting = flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'manual', signal: 'approved', timeout_in: '2d' } }));
    expect(waiting.wait).toEqual({ kind: 'manual', signal: 'approved', timeout_at: iso(T0 + 2 * DAY) });
    await tf.engine.signal(id, { signal: 'approved', payload: { by: 'ops' } });
    expect(flowOf(await tool.call({ action: 'status', flow_id: id })).last_wake).toEqual({ reason: 'signal', at: iso(T0), signal: 'approved', payload: { by: 'ops' } });
  });

  it('finish merges final_state; fail records the reason; cancel stops a flow', async () => {
    const { tool } = await openToolFixture();
    const a = flowOf(await tool.call(startInput));
    expect(flowOf(await tool.call({ action: 'finish', flow_id: a.id, final_state: { shipped: true } }))).toMatchObject({ status: 'finished', state: { shipped: true } });
    const b = flowOf(await tool.call(startInput));
    expect(flowOf(await tool.call({ action: 'fail', flow_id: b.id, reason: 'invoice cancelled' }))).toMatchObject({
      status: 'failed',
      state: { failure: { reason: 'invoice cancelled', at: iso(T0) } },
    });
    const c = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: c.id, wait_condition: { kind: 'manual' } });
    expect(flowOf(await tool.call({ action: 'cancel', flow_id: c.id })).status).toBe('cancelled');
  });

  it('list_mine returns only this session\'s flows, newest first, filtered by status, in bounded pages', async () => {
    const { tf, tool } = await openToolFixture();
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      tf.clock.set(T0 + i * 1000);
      ids.push(flowOf(await tool.call({ ...startInput, goal: `goal ${i}` })).id);
    }
    await tf.manager.createManaged({ controllerId: 'bob/x', goal: 'not yours', ownerSessionKey: OTHER_OWNER });
    await tool.call({ action: 'finish', flow_id: ids[3] });
    const page = await tool.call({ action: 'list_mine' });
    expect(page).toMatchObject({ ok: true, count: 20, has_more: true });
    const flows = (page as { flows: { id: string }[] }).flows;
    expect(flows.map((f) => f.id)).toEqual(ids.slice(5).reverse());
    const rest = await tool.call({ action: 'list_mine', offset: 20, limit: 100 });
    expect(rest).toMatchObject({ count: 5, has_more: false });
    const finished = await tool.call({ action: 'list_mine', status: 'finished' });
    expect(finished).toMatchObject({ count: 1, flows: [{ id: ids[3], status: 'finished' }] });
    expect(await tool.call({ action: 'list_mine', status: 'waiting' })).toMatchObject({ ok: true, count: 0, flows: [] });
  });

  it('treats null optional fields as absent (strict tool calls send null)', async () => {
    const { tool } = await openToolFixture();
    const flow = flowOf(await tool.call({ ...startInput, state: null, current_step: null, idempotency_key: null, flow_id: null }));
    expect(flow).toMatchObject({ current_step: 'init', state: {} });
  });

  it('one tool instance serves many sessions through an owner resolver', async () => {
    const { tf } = await openToolFixture();
    const tool = createTaskflowTool<{ session: string }>(tf, { owner: (ctx) => ctx.session });
    const mine = flowOf(await tool.call(startInput, { session: 'agent:a:session:1' }));
    await tool.call(startInput, { session: 'agent:b:session:2' });
    expect(await tool.call({ action: 'list_mine' }, { session: 'agent:a:session:1' })).toMatchObject({ count: 1, flows: [{ id: mine.id }] });
    refused(await tool.call({ action: 'status', flow_id: mine.id }, { session: 'agent:b:session:2' }), 'not_found');
  });
});

describe('taskflow tool: refusals change nothing and say how to fix the call', () => {
  async function refusalCase() {
    const fixture = await openToolFixture({ topics: ['payments.>', 'orders.*.paid'], timerMaxHorizon: '7d' });
    const running = flowOf(await fixture.tool.call(startInput));
    const finished = flowOf(await fixture.tool.call(startInput));
    await fixture.tool.call({ action: 'finish', flow_id: finished.id });
    const foreign = await fixture.tf.manager.createManaged({ controllerId: 'bob/x', goal: 'not yours', ownerSessionKey: OTHER_OWNER });
    const before = snapshotDatabase(fixture.tf.path);
    const unchanged = () => expect(snapshotDatabase(fixture.tf.path)).toEqual(before);
    return { ...fixture, running, finished, foreign, unchanged };
  }

  it('garbage input', async () => {
    const { tool, unchanged } = await refusalCase();
    for (const garbage of [undefined, null, 42, 'not json', [], [{ action: 'start' }], true]) {
      expect(refused(await tool.call(garbage), 'invalid_input')).toMatch(/must be a JSON object/);
    }
    unchanged();
  });

  it('unknown or missing action', async () => {
    const { tool, unchanged } = await refusalCase();
    expect(refused(await tool.call({ action: 'delete' }), 'unknown_action')).toBe(`unknown action "delete"; use one of ${TASKFLOW_ACTIONS.join(', ')}`);
    expect(refused(await tool.call({ goal: 'x' }), 'unknown_action')).toMatch(/needs action/);
    unchanged();
  });

  it('a missing or wrong field, named in the message', async () => {
    const { tool, running, unchanged } = await refusalCase();
    expect(refused(await tool.call({ action: 'start', goal: 'g' }), 'invalid_input')).toMatch(/start needs controller_id/);
    expect(refused(await tool.call({ action: 'start', controller_id: 'c', goal: '  ' }), 'invalid_input')).toMatch(/^goal must be a non-empty string/);
    expect(refused(await tool.call({ ...startInput, state: [1] }), 'invalid_input')).toMatch(/^state must be a JSON object/);
    expect(refused(await tool.call({ action: 'status' }), 'invalid_input')).toMatch(/status needs flow_id/);
    expect(refused(await tool.call({ action: 'advance', flow_id: running.id }), 'invalid_input')).toMatch(/advance needs patch .* or current_step/);
    expect(refused(await tool.call({ action: 'fail', flow_id: running.id }), 'invalid_input')).toMatch(/fail needs reason/);
    expect(refused(await tool.call({ action: 'finish', flow_id: running.id, final_state: 'done' }), 'invalid_input')).toMatch(/^final_state must be a JSON object/);
    expect(refused(await tool.call({ action: 'list_mine', limit: 500 }), 'invalid_input')).toMatch(/limit must be an integer from 1 to 100/);
    expect(refused(await tool.call({ action: 'list_mine', status: 'sleeping' }), 'invalid_input')).toMatch(/status must be one of created, running/);
    expect(refused(await tool.call({ action: 'wait', flow_id: running.id }), 'invalid_input')).toMatch(/wait needs wait_condition/);
    const wait = (wait_condition: unknown) => tool.call({ action: 'wait', flow_id: running.id, wait_condition });
    expect(refused(await wait({ kind: 'alarm' }), 'invalid_input')).toMatch(/wait_condition.kind must be one of timer, external_event, manual/);
    expect(refused(await wait({ kind: 'timer' }), 'invalid_input')).toMatch(/needs wait_condition.at .* or wait_condition.in/);
    expect(refused(await wait({ kind: 'timer', at: '2026-01-02T00:00:00Z', in: '1h' }), 'invalid_input')).toMatch(/either wait_condition.at or wait_condition.in/);
    expect(refused(await wait({ kind: 'timer', at: '2026-01-02 noon' }), 'invalid_input')).toMatch(/not an RFC 3339 time/);
    expect(refused(await wait({ kind: 'timer', at: '2026-01-02T09:00:00' }), 'invalid_input')).toMatch(/with a time zone/);
    expect(refused(await wait({ kind: 'timer', in: 'soon' }), 'invalid_input')).toMatch(/wait_condition.in "soon" is not a duration/);
    expect(refused(await wait({ kind: 'timer', in: '1h', topic: 'payments.x' }), 'invalid_input')).toMatch(/wait_condition.topic does not apply to a timer wait/);
    expect(refused(await wait({ kind: 'external_event', topic: 'payments.x', correlationId: 'INV-1' }), 'invalid_input')).toMatch(/wait_condition.correlationId is not a field/);
    expect(refused(await wait({ kind: 'external_event', topic: 'payments.x' }), 'invalid_input')).toMatch(/needs wait_condition.correlation_id/);
    expect(refused(await wait({ kind: 'external_event', correlation_id: 'INV-1' }), 'invalid_input')).toMatch(/needs wait_condition.topic/);
    expect(refused(await wait({ kind: 'external_event', topic: 'payments.*', correlation_id: 'INV-1' }), 'invalid_input')).toMatch(/wildcard/);
    unchanged();
  });

  it('a timer or timeout in the past', async () => {
    const { tool, running, unchanged } = await refusalCase();
    const message = refused(await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'timer', at: '2025-12-31T23:00:00Z' } }), 'invalid_input');
    expect(message).toMatch(/wait_condition.at 2025-12-31T23:00:00.000Z is in the past \(now is 2026-01-01T00:00:00.000Z\)/);
    expect(refused(await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'timer', at: iso(T0) } }), 'invalid_input')).toMatch(/in the past/);
    expect(refused(await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'timer', in: '0s' } }), 'invalid_input')).toMatch(/longer than 0/);
    expect(refused(await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'manual', timeout_at: '2020-01-01T00:00:00Z' } }), 'invalid_input')).toMatch(/timeout_at .* is in the past/);
    unchanged();
  });

  it('a timer or timeout beyond the binding horizon', async () => {
    const { tool, running, unchanged } = await refusalCase();
    expect(refused(await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'timer', in: '8d' } }), 'invalid_input')).toMatch(/beyond the horizon of 7d/);
    expect(
      refused(await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'external_event', topic: 'payments.x', correlation_id: '1', timeout_in: '30d' } }), 'invalid_input'),
    ).toMatch(/timeout .* beyond the horizon of 7d/);
    unchanged();
  });

  it('the horizon defaults to the runtime timerMaxHorizon', async () => {
    const { tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    expect(refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'timer', in: '31d' } }), 'invalid_input')).toMatch(/horizon of 30d/);
    expect(flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'timer', in: '30d' } })).status).toBe('waiting');
  });

  it('a topic outside the allow-list', async () => {
    const { tool, running, unchanged } = await refusalCase();
    const message = refused(
      await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'external_event', topic: 'orders.42.shipped', correlation_id: '42' } }),
      'topic_not_allowed',
    );
    expect(message).toBe('topic "orders.42.shipped" is not allowed here; allowed topics: payments.>, orders.*.paid');
    unchanged();
    expect(flowOf(await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'external_event', topic: 'orders.42.paid', correlation_id: '42' } })).status).toBe('waiting');
  });

  it('an action the binding does not allow, naming the allowed ones', async () => {
    const { tf, running, unchanged } = await refusalCase();
    const readOnly = createTaskflowTool(tf, { owner: OWNER, allow: ['status', 'list_mine'] });
    expect(refused(await readOnly.call({ action: 'cancel', flow_id: running.id }), 'action_not_allowed')).toBe(
      'action "cancel" is not allowed here; allowed actions: status, list_mine',
    );
    expect(readOnly.description).not.toMatch(/- cancel:/);
    expect(flowOf(await readOnly.call({ action: 'status', flow_id: running.id })).id).toBe(running.id);
    unchanged();
  });

  it("another session's flow answers exactly like a missing one", async () => {
    const { tool, foreign, unchanged } = await refusalCase();
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const action of ['status', 'advance', 'finish', 'fail', 'cancel', 'wait'] as const) {
      const extra = { patch: { x: 1 }, reason: 'r', wait_condition: { kind: 'manual' } };
      const theirs = await tool.call({ action, flow_id: foreign.id, ...extra });
      const nobodys = await tool.call({ action, flow_id: missing, ...extra });
      expect(theirs).toEqual({ ok: false, error: 'not_found', message: expect.any(String) });
      expect((theirs as { message: string }).message.replace(foreign.id, '<id>')).toBe((nobodys as { message: string }).message.replace(missing, '<id>'));
    }
    refused(await tool.call({ action: 'status', flow_id: 'not-a-uuid' }), 'not_found');
    unchanged();
  });

  it('a terminal flow refuses every move', async () => {
    const { tool, finished, unchanged } = await refusalCase();
    for (const input of [
      { action: 'advance', patch: { x: 1 } },
      { action: 'wait', wait_condition: { kind: 'timer', in: '1h' } },
      { action: 'finish' },
      { action: 'fail', reason: 'r' },
      { action: 'cancel' },
    ]) {
      expect(refused(await tool.call({ ...input, flow_id: finished.id }), 'already_terminal')).toMatch(/already finished.*start a new flow/);
    }
    unchanged();
  });

  it('an illegal move says how to find out where the flow is', async () => {
    const { tf, tool, running } = await refusalCase();
    await tool.call({ action: 'wait', flow_id: running.id, wait_condition: { kind: 'manual' } });
    const before = snapshotDatabase(tf.path);
    expect(refused(await tool.call({ action: 'finish', flow_id: running.id }), 'illegal_transition')).toMatch(/cannot move from waiting to finished.*Call status/);
    expect(snapshotDatabase(tf.path)).toEqual(before);
  });

  it('a call without a resolvable owner', async () => {
    const { tf, unchanged } = await refusalCase();
    const tool = createTaskflowTool<{ session?: string }>(tf, { owner: (ctx) => ctx?.session });
    expect(refused(await tool.call({ action: 'list_mine' }, {}), 'no_owner')).toMatch(/no session/);
    const throwing = createTaskflowTool(tf, {
      owner: () => {
        throw new Error('boom');
      },
    });
    refused(await throwing.call(startInput), 'no_owner');
    unchanged();
  });

  it('a malformed binding throws when the tool is created', async () => {
    const { tf } = await openToolFixture();
    const invalid = (fn: () => unknown) => expect(fn).toThrow(FlowError);
    invalid(() => createTaskflowTool(tf, { owner: '' }));
    invalid(() => createTaskflowTool(tf, { owner: OWNER, allow: ['launch' as 'start'] }));
    invalid(() => createTaskflowTool(tf, { owner: OWNER, topics: ['payments.>.paid'] }));
    invalid(() => createTaskflowTool(tf, { owner: OWNER, timerMaxHorizon: 'forever' }));
  });
});
