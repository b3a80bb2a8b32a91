import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const dialects = [
  { dialect: 'sqlite', schema: 'src/runtime/store/sqlite/schema.ts', folder: 'drizzle/sqlite' },
  { dialect: 'postgresql', schema: 'src/runtime/store/postgres/schema.ts', folder: 'drizzle/pg' },
];

describe.each(dialects)('$dialect migrations', ({ dialect, schema, folder }) => {
  it('agree with the Drizzle schema: drizzle-kit generates nothing new', () => {
    // drizzle-kit wants an --out path relative to the project
    mkdirSync('.tmp', { recursive: true });
    const out = relative(process.cwd(), mkdtempSync('.tmp/migrations-'));
    try {
      cpSync(folder, out, { recursive: true });
      const before = readdirSync(out).filter((f) => f.endsWith('.sql'));
      const log = execFileSync(
        process.execPath,
        ['node_modules/drizzle-kit/bin.cjs', 'generate', '--dialect', dialect, '--schema', schema, '--out', out],
        { encoding: 'utf8' },
      );
      const after = readdirSync(out).filter((f) => f.endsWith('.sql'));
      expect(after, `schema.ts changed without a migration: run npm run db:generate\n${log}`).toEqual(before);
      expect(log).toMatch(/No schema changes/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
