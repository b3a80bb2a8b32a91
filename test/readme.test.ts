import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

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

describe('README examples', () => {
  const blocks = readmeBlocks();

  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  for (const block of blocks) {
    it(`runs the example at README.md line ${block.line}`, () => {
      // Inside the package folder, so `import 'nexo-taskflow'` resolves to this package.
      mkdirSync('.tmp', { recursive: true });
      const folder = mkdtempSync(resolve('.tmp', 'readme-'));
      const cwd = mkdtempSync(join(tmpdir(), 'taskflow-readme-'));
      try {
        const file = join(folder, 'example.ts');
        writeFileSync(file, block.code);
        const output = execFileSync(process.execPath, ['--import', import.meta.resolve('tsx'), file], {
          cwd,
          encoding: 'utf8',
          timeout: 60_000,
          env: { ...process.env, TASKFLOW_DB_PATH: join(cwd, 'taskflow.db') },
        });
        expect(output).toBeTypeOf('string');
      } finally {
        rmSync(folder, { recursive: true, force: true });
        rmSync(cwd, { recursive: true, force: true });
      }
    }, 90_000);
  }
});
