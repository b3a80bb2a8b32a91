import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type NatsServer } from './support/nats-server.js';
import { tempPgDatabase } from './support/pg-database.js';

const run = promisify(execFile);

/** Every ```ts block of README.md, run as written against the built package. */
function readmeBlocks(): Array<{ line: number; code: string }> {
  const text = readFileSync('README.md', 'utf8');
  const blocks: Array<{ line: number; code: string }> = [];
  const pattern = /^```ts\n([\s\S]*?)^```$/gm;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    blocks.push({ line: text.slice(0, match.index).split('\n').length, code: match[1]! });
  }
  return blocks;
}

/**
 * The trailing comments of the block's `console.log(...)` lines that quote what
 * they print. A comment with an ellipsis or a comma-separated list describes the
 * output rather than quoting it, and is not checked.
 */
function promisedOutput(code: string): string[] {
  return [...code.matchAll(/console\.log\(.*\);\s*\/\/\s*(.+)$/gm)].map((m) => m[1]!.trim()).filter((c) => !/\.\.\.|…|, /.test(c));
}

/**
 * The README's examples read their servers from the environment (`NATS_URL`,
 * `TASKFLOW_PG_URL`), with the usual local defaults. The test gives each one a
 * server of its own: a nats-server it starts on a free port, and a throwaway
 * PostgreSQL database it creates and drops, so nothing needs to be listening on
 * 4222, no `test` database needs to exist, and no run leaves a flow behind.
 */
describe('README examples', () => {
  const blocks = readmeBlocks();
  let nats: NatsServer | undefined;

  beforeAll(async () => {
    if (blocks.some((b) => b.code.includes('NATS_URL'))) nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  for (const block of blocks) {
    it(`runs the example at README.md line ${block.line}`, async () => {
      // Inside the package folder, so `import 'nexo-taskflow'` resolves to this package.
      mkdirSync('.tmp', { recursive: true });
      const folder = mkdtempSync(resolve('.tmp', 'readme-'));
      const cwd = mkdtempSync(join(tmpdir(), 'taskflow-readme-'));
      try {
        const file = join(folder, 'example.ts');
        writeFileSync(file, block.code);
        const env: NodeJS.ProcessEnv = { ...process.env, TASKFLOW_DB_PATH: join(cwd, 'taskflow.db') };
        if (nats) env.NATS_URL = nats.url;
        if (block.code.includes('TASKFLOW_PG_URL')) env.TASKFLOW_PG_URL = await tempPgDatabase();
        const { stdout } = await run(process.execPath, ['--import', import.meta.resolve('tsx'), file], {
          cwd,
          encoding: 'utf8',
          timeout: 120_000,
          env,
        });
        // `console.log(x); // shown` in the README: what the example says it prints, it prints.
        for (const shown of promisedOutput(block.code)) expect(stdout).toContain(shown);
      } finally {
        rmSync(folder, { recursive: true, force: true });
        rmSync(cwd, { recursive: true, force: true });
      }
    }, 180_000);
  }
});
