import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openTaskflow, silentLogger } from '../src/index.js';
import { TempFolders, taskflowCli } from './support/cli-run.js';
import { newFlow } from './support/taskflow.js';
import { until } from './support/until.js';

const temp = new TempFolders();
afterAll(() => temp.removeAll());

/** A database with one flow whose onResume failed on its only allowed attempt, and one healthy flow. */
async function databaseWithDeadResume(): Promise<{ db: string; deadFlow: string; healthyFlow: string }> {
  const db = join(temp.make(), 'taskflow.db');
  const tf = await openTaskflow({
    database: db,
    logger: silentLogger,
    maxResumeAttempts: 1,
    onResume: () => {
      throw new Error('agent unavailable: model quota exceeded');
    },
  });
  try {
    await tf.start();
    const dead = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(dead.id);
    await tf.manager.setWaiting(dead.id, { kind: 'manual' });
    await tf.manager.resume(dead.id);
    await until(async () => (await tf.store.listNotifications([dead.id]))[0]?.deadAt != null);
    const healthy = await tf.manager.createManaged({ ...newFlow, goal: 'nothing wrong here' });
    return { db, deadFlow: dead.id, healthyFlow: healthy.id };
  } finally {
    await tf.close();
  }
}

describe('taskflow CLI: dead resume notifications (issue 9.6)', () => {
  it('list marks a flow with a dead resume, and --dead lists only such flows', async () => {
    const { db, deadFlow, healthyFlow } = await databaseWithDeadResume();
    const [all, dead, deadJson] = await Promise.all([
      taskflowCli(['--db', db, 'list']),
      taskflowCli(['--db', db, 'list', '--dead']),
      taskflowCli(['--db', db, 'list', '--dead', '--json']),
    ]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout.split('\n').find((line) => line.startsWith(deadFlow))).toMatch(/running \(1 dead resume\)/);
    expect(all.stdout.split('\n').find((line) => line.startsWith(healthyFlow))).not.toMatch(/dead/);
    expect(dead.stdout).toContain(deadFlow);
    expect(dead.stdout).not.toContain(healthyFlow);
    const out = JSON.parse(deadJson.stdout) as { count: number; flows: Array<{ id: string }>; deadNotifications: Record<string, number> };
    expect(out.flows.map((f) => f.id)).toEqual([deadFlow]);
    expect(out.deadNotifications).toEqual({ [deadFlow]: 1 });
  });

  it('show lists the flow\'s notifications with their attempts and last error', async () => {
    const { db, deadFlow } = await databaseWithDeadResume();
    const [text, json] = await Promise.all([taskflowCli(['--db', db, 'show', deadFlow]), taskflowCli(['--db', db, 'show', deadFlow, '--json'])]);
    expect(text.code, text.stderr).toBe(0);
    const section = text.stdout.split('\nResume notifications\n')[1]!;
    expect(section.split('\n')[0]).toMatch(/^#\s+STATE\s+REASON\s+ATTEMPTS\s+DUE\s+DEAD SINCE\s+LAST ERROR$/);
    expect(section.split('\n')[1]).toMatch(/\bdead\s+manual\s+1\s+-\s+\d{4}-\d\d-\d\dT.*Error: agent unavailable: model quota exceeded/);
    const out = JSON.parse(json.stdout) as { notifications: Array<Record<string, unknown>> };
    expect(out.notifications).toEqual([
      expect.objectContaining({ flowId: deadFlow, attempts: 1, lastError: expect.stringContaining('model quota exceeded'), deadAt: expect.any(String) }),
    ]);
  });

  it('requeue puts the dead notification back, and the running application delivers it', async () => {
    const { db, deadFlow } = await databaseWithDeadResume();
    const handled: string[] = [];
    const app = await openTaskflow({ database: db, logger: silentLogger, tickInterval: '200ms', onResume: (flow) => void handled.push(flow.id) });
    try {
      await app.start();
      const requeued = await taskflowCli(['--db', db, 'requeue', deadFlow]);
      expect(requeued.code, requeued.stderr).toBe(0);
      expect(requeued.stdout).toBe(`re-queued 1 dead notification of flow ${deadFlow}; the application's engine delivers it\n`);
      await until(() => handled.length === 1);
      expect(handled).toEqual([deadFlow]);
      const again = await taskflowCli(['--db', db, 'requeue', deadFlow, '--json']);
      expect(JSON.parse(again.stdout)).toEqual({ flowId: deadFlow, requeued: 0 });
    } finally {
      await app.close();
    }
  });

  it('requeue refuses an unknown flow (exit 1) and a bad --notification (exit 2)', async () => {
    const { db, deadFlow } = await databaseWithDeadResume();
    const [unknown, bad] = await Promise.all([
      taskflowCli(['--db', db, 'requeue', '00000000-0000-4000-8000-000000000000']),
      taskflowCli(['--db', db, 'requeue', deadFlow, '--notification', 'x']),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/not_found/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--notification/);
  });
});
