import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Three apps, as a user writes them, install the packed package and are compiled
// with `strict` and without `skipLibCheck`, then run a durable story in two
// processes on one SQLite file. To stay offline and fast, each app's SDKs and the
// package's own dependencies are links to this project's node_modules (so the
// native better-sqlite3 build is reused); only the tarball is really installed.

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const FIXTURES = ['app-ai6', 'app-ai7', 'app-langchain'] as const;
type Fixture = (typeof FIXTURES)[number];
/** Where an app's dependency lives in this project's node_modules when not under its own name: ai 7 is the alias `ai7`. */
const LINKED_FROM: Partial<Record<Fixture, Record<string, string>>> = { 'app-ai7': { ai: 'ai7' } };
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, timeout = 300_000): Promise<Run> {
  return new Promise((done) => {
    execFile(command, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, TASKFLOW_DB_PATH: '' } }, (error, stdout, stderr) => {
      const failure = error as (Error & { code?: number | string; signal?: NodeJS.Signals | null }) | null;
      done({ code: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0, signal: failure?.signal ?? null, stdout, stderr });
    });
  });
}

function lastJsonLine(output: string): Record<string, unknown> {
  const line = output.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as Record<string, unknown>;
}

let work: string;
let tarball: string;
const typechecks = new Map<Fixture, Run>();

async function linkedVersion(name: string): Promise<string> {
  return (JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Copies a fixture next to the tarball and installs it: the tarball for real, everything else as links. */
async function install(app: Fixture): Promise<void> {
  const dir = join(work, app);
  await cp(join(ROOT, 'test', 'fixtures', app), dir, { recursive: true, filter: (source) => !/[\\/](node_modules|dist)$/.test(source) });
  const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const own = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const link = async (name: string, range: string): Promise<string> => {
    const from = LINKED_FROM[app]?.[name] ?? name;
    const version = await linkedVersion(from);
    const major = /(\d+)/.exec(range)?.[1];
    if (major !== undefined && version.split('.')[0] !== major) throw new Error(`${app} wants ${name}@${range}, the project has ${version}`);
    return `file:${join(ROOT, 'node_modules', from)}`;
  };
  const dependencies: Record<string, string> = {};
  for (const [name, range] of Object.entries({ ...own.dependencies, ...manifest.dependencies })) {
    if (name !== 'nexo-taskflow') dependencies[name] = await link(name, range);
  }
  // Last: npm 11 fails ("reading 'matches'") placing the peers of a link listed after the tarball.
  dependencies['nexo-taskflow'] = `file:${tarball}`;
  const devDependencies: Record<string, string> = {};
  for (const [name, range] of Object.entries(manifest.devDependencies ?? {})) devDependencies[name] = await link(name, range);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ ...manifest, dependencies, devDependencies }, null, 2));
  // engine-strict, as a Node 20 user may run it; ai 7 itself declares Node 22, so not for its app.
  const strictEngines = app === 'app-ai7' ? [] : ['--engine-strict'];
  const installed = await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', ...strictEngines], dir);
  if (installed.code !== 0) throw new Error(`npm install in ${app} failed:\n${installed.stderr}`);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'taskflow-apps-'));
  // global-setup built dist/; `prepare` would build it again.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work, '--loglevel=error'], ROOT);
  if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.stderr}`);
  tarball = join(work, 'nexo-taskflow.tgz');
  await rename(join(work, packed.stdout.trim().split('\n').at(-1)!), tarball);
  await Promise.all(FIXTURES.map(install));
  const results = await Promise.all(FIXTURES.map((app) => run(process.execPath, [TSC, '-p', 'tsconfig.json'], join(work, app))));
  FIXTURES.forEach((app, i) => typechecks.set(app, results[i]!));
}, 900_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the built code, its declarations, the migrations and the LICENSE, and no source maps', async () => {
    const listed = await run('tar', ['-tzf', tarball], work);
    const files = listed.stdout.split('\n').filter(Boolean);
    expect(files).toEqual(expect.arrayContaining(['package/LICENSE', 'package/README.md', 'package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/adapters/vercel-ai.d.ts']));
    expect(files.some((file) => file.startsWith('package/drizzle/sqlite/'))).toBe(true);
    expect(files.filter((file) => file.endsWith('.map') || file.endsWith('.tsbuildinfo'))).toEqual([]);
    expect(files.filter((file) => file.startsWith('package/src/') || file.startsWith('package/test/'))).toEqual([]);
  });

  it('installs without the NATS packages or pg: both are optional peers', async () => {
    const modules = await readdir(join(work, 'app-ai6', 'node_modules'));
    expect(modules).not.toContain('pg');
    expect(modules).not.toContain('@nats-io');
    const manifest = JSON.parse(await readFile(join(work, 'app-ai6', 'node_modules', 'nexo-taskflow', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      peerDependenciesMeta: Record<string, { optional: boolean }>;
    };
    expect(Object.keys(manifest.dependencies).filter((name) => name.startsWith('@nats-io/'))).toEqual([]);
    expect(manifest.peerDependenciesMeta['@nats-io/transport-node']).toEqual({ optional: true });
  });
});

describe.each(FIXTURES)('%s, installing the packed package', (app) => {
  it('typechecks with strict and without skipLibCheck', () => {
    const result = typechecks.get(app)!;
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('starts a flow that waits, dies, and a second process on the same file resumes and finishes it', async () => {
    const dir = join(work, app);
    const database = join(dir, 'data', 'story.db');
    const first = await run(process.execPath, ['dist/story.js', 'start', database], dir);
    expect(first.signal, first.stderr).toBe('SIGKILL');
    const started = lastJsonLine(first.stdout);
    expect(started).toMatchObject({ phase: 'start', status: 'waiting', unfit: 'invalid_input' });
    expect(started.missingNats).toMatch(/^missing_dependency: .*npm install @nats-io\/transport-node @nats-io\/jetstream/);

    const second = await run(process.execPath, ['dist/story.js', 'resume', database], dir);
    expect(second.code, second.stderr).toBe(0);
    expect(lastJsonLine(second.stdout)).toEqual({ phase: 'resume', flowId: started.flowId, status: 'finished', order: 42, shippedAfter: 'timer' });
  }, 600_000);
});
