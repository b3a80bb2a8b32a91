import { describe, expect, it } from 'vitest';
import { createTaskflowTool, type TaskflowToolResult } from '../src/index.js';
import { startInspector } from '../src/ui/index.js';
import { taskflowCli } from './support/cli-run.js';
import { T0 } from './support/taskflow.js';
import { flowOf, openToolFixture, OWNER, snapshotDatabase, startInput } from './support/tool-fixtures.js';

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

function refused(result: TaskflowToolResult, error: string): string {
  expect(result).toMatchObject({ ok: false, error });
  return (result as { message: string }).message;
}

describe('taskflow tool: recurring waits', () => {
  it('sets a schedule from snake_case fields and shows it, with the pending occurrence as the wait', async () => {
    const { tool } = await openToolFixture();
    const started = flowOf(await tool.call(startInput));
    const waiting = flowOf(
      await tool.call({ action: 'wait', flow_id: started.id, wait_condition: { kind: 'recurring', every: '3d', count: 5, until: iso(T0 + 30 * DAY) } }),
    );
    expect(waiting.status).toBe('waiting');
    expect(waiting.wait).toEqual({ kind: 'recurring', occurrence: 1, at: iso(T0 + 3 * DAY) });
    expect(waiting.schedule).toEqual({ every: '3d', first_at: iso(T0 + 3 * DAY), until: iso(T0 + 30 * DAY), count: 5, catch_up: 'latest' });
  });

  it('shows the occurrence in last_wake, and next_occurrence parks once however often it is repeated', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'recurring', cron: '0 9 * * *', time_zone: 'Europe/Paris' } });
    tf.clock.set((await tf.engine.nextDueAt())!);
    await tf.engine.tick();
    const resumed = flowOf(await tool.call({ action: 'status', flow_id: id }));
    expect(resumed.status).toBe('running');
    expect(resumed.last_wake).toMatchObject({ reason: 'recurring', occurrence: { number: 1, scheduled_at: '2026-01-01T08:00:00.000Z', missed: 0, last: false } });
    const parked = flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'next_occurrence', after: 1 } }));
    expect(parked.wait).toEqual({ kind: 'recurring', occurrence: 2, at: '2026-01-02T08:00:00.000Z' });
    const before = snapshotDatabase(tf.path);
    const again = await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'next_occurrence', after: 1 } });
    expect(flowOf(again)).toEqual(parked);
    expect(snapshotDatabase(tf.path)).toEqual(before);
  });

  it('describes recurring waits to the model, and a binding can keep them away', async () => {
    const { tf, tool } = await openToolFixture();
    expect(tool.description).toMatch(/"kind":"recurring","every":"3d"/);
    expect(tool.description).toMatch(/next_occurrence/);
    const plain = createTaskflowTool(tf, { owner: OWNER, recurring: false });
    expect(plain.description).not.toMatch(/recurring/);
    const { id } = flowOf(await plain.call(startInput));
    expect(refused(await plain.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'recurring', every: '1d' } }), 'invalid_input')).toMatch(
      /not available here/,
    );
  });

  it("refuses schedules more frequent than the binding's shortest interval, or with a period beyond its horizon", async () => {
    const { tool } = await openToolFixture({ recurring: { minInterval: '1h' }, timerMaxHorizon: '2d' });
    const { id } = flowOf(await tool.call(startInput));
    const wait = (condition: Record<string, unknown>) => tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'recurring', ...condition } });
    expect(refused(await wait({ every: '30m' }), 'invalid_input')).toMatch(/at least 1h/);
    expect(refused(await wait({ cron: '*/5 * * * *' }), 'invalid_input')).toMatch(/more often than every 1h/);
    expect(refused(await wait({ every: '3d' }), 'invalid_input')).toMatch(/horizon/);
    expect(flowOf(await wait({ every: '1d' })).status).toBe('waiting');
  });

  it('refuses bad fields in snake_case words and changes nothing', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    const before = snapshotDatabase(tf.path);
    const wait = (condition: Record<string, unknown>) => tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'recurring', ...condition } });
    expect(refused(await wait({ cron: '0 9 * * *', time_zone: 'Mars/Olympus' }), 'invalid_input')).toMatch(/time_zone "Mars\/Olympus"/);
    expect(refused(await wait({ cron: 'at nine' }), 'invalid_input')).toMatch(/not a cron expression/);
    expect(refused(await wait({ every: '1d', count: 0 }), 'invalid_input')).toMatch(/count must be/);
    expect(refused(await wait({ every: '1d', catch_up: 'never' }), 'invalid_input')).toMatch(/catch_up must be one of latest, each/);
    expect(refused(await wait({ every: '1d', topic: 'x' }), 'invalid_input')).toMatch(/topic does not apply to a recurring wait/);
    expect(refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'next_occurrence' } }), 'invalid_input')).toMatch(/needs wait_condition.after/);
    expect(refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'next_occurrence', after: 0 } }), 'invalid_input')).toMatch(
      /no recurring schedule/,
    );
    expect(snapshotDatabase(tf.path)).toEqual(before);
  });
});

describe('taskflow show: recurring schedule', () => {
  it('prints the schedule and the occurrence last resumed', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'recurring', every: '3d', count: 5 } });
    tf.clock.advance(3 * DAY);
    await tf.engine.tick();
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'next_occurrence', after: 1 } });
    const result = await taskflowCli(['show', id, '--db', tf.path]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^wait:\s+occurrence 2 at 2026-01-07T00:00:00.000Z$/m);
    const line = 'every 3d from 2026-01-04T00:00:00.000Z, 5 times at most, catch-up latest; last occurrence 1 at 2026-01-04T00:00:00.000Z';
    expect(result.stdout.split('\n').find((l) => l.startsWith('schedule:'))?.replace(/^schedule:\s+/, '')).toBe(line);
    const json = JSON.parse((await taskflowCli(['show', id, '--db', tf.path, '--json'])).stdout) as { flow: { schedule: unknown } };
    expect(json.flow.schedule).toMatchObject({ every: 3 * DAY, count: 5, last: { number: 1 } });
  });
});

describe('inspector: recurring schedule', () => {
  it('shows the schedule on the flow page', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'recurring', cron: '0 9 * * MON-FRI', time_zone: 'Europe/Paris' } });
    const inspector = await startInspector({ taskflow: tf, readOnly: true });
    try {
      const page = await (await fetch(`${inspector.url}flows/${id}`)).text();
      expect(page).toContain('<dd id="schedule">cron &quot;0 9 * * MON-FRI&quot; in Europe/Paris from 2026-01-01T08:00:00.000Z, catch-up latest; no occurrence yet</dd>');
      expect(page).toContain('occurrence 1 at');
    } finally {
      await inspector.close();
    }
  });
});
