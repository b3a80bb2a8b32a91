import { describe, expect, it } from 'vitest';
import { openTaskflow, ManualClock } from '../src/index.js';
import { taskflowCli } from './support/cli-run.js';
import { newFlow, T0 } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';

describe('CLI: a flow waiting on the first of several conditions', () => {
  it('show prints every condition of the wait, and --json gives them as stored', async () => {
    const db = tempDbPath();
    const tf = await openTaskflow({ database: db, clock: new ManualClock(T0) });
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, {
      kind: 'any',
      of: [
        { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' },
        { kind: 'manual', signal: 'cancel_order' },
        { kind: 'timer', at: T0 + 3 * 86_400_000 },
      ],
    });
    await tf.close();

    const shown = await taskflowCli(['show', flow.id, '--db', db]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^wait:\s+first of: event payments\.received\/INV-42 or signal cancel_order or timer 2026-01-04T00:00:00\.000Z$/m);

    const json = JSON.parse((await taskflowCli(['show', flow.id, '--db', db, '--json'])).stdout) as { flow: { wait: unknown } };
    expect(json.flow.wait).toEqual({
      kind: 'any',
      of: [
        { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' },
        { kind: 'manual', signal: 'cancel_order' },
        { kind: 'timer', at: '2026-01-04T00:00:00.000Z' },
      ],
    });
  });
});
