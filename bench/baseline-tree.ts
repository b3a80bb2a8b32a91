import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The baseline side of `npm run bench -- --against=<ref>`, ready to run. */
export interface BaselineTree {
  /** The ref as given. */
  readonly ref: string;
  /** The commit it names, abbreviated. */
  readonly commit: string;
  /** The folder holding the commit's files with this tree's harness over them. */
  readonly dir: string;
  /** Removes the folder (the linked node_modules is left alone). */
  dispose(): void;
}

/** The harness files copied over the baseline besides bench/: what bench/ imports from outside src/. */
const HARNESS_SUPPORT = ['test/support/nats-server.ts'];

const git = (root: string, args: string[]): string => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8' }).trim();

/**
 * Writes `ref`'s files into a temp folder with `git archive` (the repository's
 * worktree list is left untouched), links this tree's node_modules into it, and
 * copies this tree's bench/ (and the support it imports) over the commit's own:
 * both sides then run one harness, each over its own src/. Throws when `ref`
 * names no commit.
 */
export function prepareBaseline(root: string, ref: string): BaselineTree {
  let sha: string;
  try {
    sha = git(root, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  } catch {
    throw new Error(`--against=${ref}: no such commit in ${root}`);
  }
  const commit = sha.slice(0, 7);
  const dir = mkdtempSync(join(tmpdir(), `taskflow-bench-against-${commit}-`));
  const modules = join(dir, 'node_modules');
  const dispose = () => {
    if (existsSync(modules)) unlinkSync(modules); // the link only, before the folder goes
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    execFileSync('sh', ['-c', 'git -C "$1" archive --format=tar "$2" | tar -x -C "$3"', 'sh', root, sha, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    symlinkSync(realpathSync(join(root, 'node_modules')), modules, 'dir');
    cpSync(join(root, 'bench'), join(dir, 'bench'), { recursive: true, force: true, filter: (path) => !path.endsWith('.md') });
    for (const file of HARNESS_SUPPORT) if (existsSync(join(root, file))) cpSync(join(root, file), join(dir, file), { force: true });
  } catch (error) {
    dispose();
    throw error;
  }
  return { ref, commit, dir, dispose };
}

/** This tree's HEAD, abbreviated, and whether src/ or bench/ holds changes not committed yet. */
export function describeWorkingTree(root: string): { commit: string; dirty: boolean } {
  const commit = git(root, ['rev-parse', '--short=7', 'HEAD']);
  const dirty = git(root, ['status', '--porcelain', '--', 'src', 'bench']) !== '';
  return { commit, dirty };
}
