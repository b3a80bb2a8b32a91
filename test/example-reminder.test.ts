import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('the rolling-reminder example', () => {
  it('reminds every 3 days, stops when paid, escalates after 5 unanswered reminders, and never sends a redelivered reminder twice', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/rolling-reminder/main.ts'], { timeout: 120_000 });
    const lines = stdout.trimEnd().split('\n');
    const sent = (invoice: string) => lines.filter((line) => line.includes(`${invoice}: reminder`)).map((line) => line.slice(1, 7));
    expect(sent('INV-42')).toEqual(['day  3', 'day  6']);
    expect(sent('INV-43')).toEqual(['day  3', 'day  6', 'day  9', 'day 12', 'day 15']);
    expect(stdout).toMatch(/\[day  7\] INV-43: occurrence 2 delivered again; already handled, nothing sent/);
    expect(stdout).toMatch(/\[day  7\] INV-42: paid after 2 reminder\(s\); flow finished/);
    expect(stdout).toMatch(/\[day 18\] INV-43: 5 reminders unanswered; ESCALATED/);
    expect(lines.slice(-2)).toEqual(['[day 20]   INV-42: finished (paid), reminders sent: 2', '[day 20]   INV-43: finished (escalated), reminders sent: 5']);
  });
});
