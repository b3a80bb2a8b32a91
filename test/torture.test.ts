import { describe, expect, it } from 'vitest';
import { SCENARIOS, SIZES, tortureTable, type TortureRow } from './torture/scenarios.js';

/**
 * The short torture run (the full one is `npm run torture`): each scenario kills
 * the agent process at random instants, breaks a part under it, and then checks
 * that no flow was lost, every audit trail is legal, every resume reached a
 * handler, no refusal changed anything and no error escaped the runtime.
 */
describe('torture (short)', () => {
  const rows: TortureRow[] = [];
  for (const scenario of SCENARIOS) {
    it(`keeps every invariant: ${scenario.name}`, { timeout: 240_000 }, async () => {
      const row = await scenario.run(SIZES.short, Date.now() % 1_000_000);
      rows.push(row);
      if ('skipped' in row) return;
      expect(row.problems).toEqual([]);
      expect(row.ok).toBe(true);
    });
  }
  it('prints its table', () => {
    process.stdout.write(`\n${tortureTable(rows)}\n`);
    expect(rows.length).toBe(SCENARIOS.length);
  });
});
