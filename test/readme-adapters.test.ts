import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README's LangChain and AI SDK examples, run as users run them: with tsx,
 * against the built package (`nexo-taskflow`, `nexo-taskflow/langchain`, `nexo-taskflow/ai`).
 * The README sections show these files verbatim.
 */
function runExample(file: string): string {
  const cwd = mkdtempSync(join(tmpdir(), 'taskflow-readme-adapters-'));
  try {
    return execFileSync(process.execPath, ['--import', import.meta.resolve('tsx'), resolve(file)], {
      cwd,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, TASKFLOW_DB_PATH: join(cwd, 'taskflow.db') },
    });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

describe('README adapter examples', () => {
  it('the AI SDK example starts a flow, waits on the payment, and finishes once it arrives', () => {
    const output = runExample('test/support/tool-readme-ai.ts');
    expect(output).toContain('flow is waiting');
    expect(output).toContain('flow resumed by event: {"amount":120}');
    expect(output).toContain('flow is finished');
  }, 90_000);

  it('the LangChain example does the same through createAgent', () => {
    const output = runExample('test/support/tool-readme-langchain.ts');
    expect(output).toContain('flow is waiting');
    expect(output).toContain('flow is finished');
  }, 90_000);
});
