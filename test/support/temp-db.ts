import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

const folders: string[] = [];

afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A path to a fresh database file, removed after the test. */
export function tempDbPath(name = 'taskflow.db'): string {
  const folder = mkdtempSync(join(tmpdir(), 'taskflow-test-'));
  folders.push(folder);
  return join(folder, name);
}
