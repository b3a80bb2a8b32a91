/**
 * The house: which source file may import which. Read with docs/architecture.md.
 *
 * Every relative import of every `src/**\/*.ts` file is read with TypeScript's own
 * pre-processor (`ts.preProcessFile`): static imports, re-exports, `import type`,
 * `typeof import()` and dynamic `import()` alike. Type-only imports count. A type
 * is part of a file's meaning: a file cannot be read, changed or moved without
 * the files whose types it names, and two files that name each other's types
 * hold one concept between them. That erasure drops the import from the emitted
 * JavaScript is a detail of the emit; the declarations keep it, and type-only
 * imports are exactly where arrows back up a floor hide (a store type used by a
 * pure decision). Dynamic imports count for the same reason: loading lazily is
 * how an optional peer stays optional, not a way around the layers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The floors, lowest first: a file imports only files of its own floor or a lower one. */
const FLOOR = {
  /** The model and the pure decisions: flows, waits, wakes, moves, plans, keys, instants, errors. No I/O. */
  model: 0,
  /** The store's shared core: the contract, views, commit observers, inspect and diagnostic queries, row mapping. */
  store: 1,
  /** The dialects over that core: `store/sqlite/`, `store/postgres/`. */
  dialects: 2,
  /** The runtime's parts, side by side: the engine, the NATS bridge, the doctor, the manager, telemetry. */
  parts: 3,
  /** The wiring that builds a runtime from its parts and options (`openTaskflow`). */
  wiring: 4,
  /** What people and models use: the taskflow tool, the inspector, the CLI. */
  faces: 5,
  /** The SDK adapters, thin over the tool. */
  adapters: 6,
  /** The public entry files (package.json `exports`): they re-export from every floor. */
  entries: 7,
} as const;
type FloorName = keyof typeof FLOOR;

/**
 * A file's floor is that of the longest prefix below that matches its path. A new
 * file directly in `src/runtime/` starts on the model floor: the strictest place,
 * until this table lifts it.
 */
const FLOORS: readonly (readonly [prefix: string, floor: FloorName])[] = [
  ['src/runtime/', 'model'],
  ['src/runtime/recurring/', 'model'],
  // Pure rules for NATS subjects; the doctor and the tool apply them too, with no bus.
  ['src/runtime/nats/subject.ts', 'model'],
  // The engine's planners: pure decisions (given what was loaded, what to write), filed beside their caller.
  ['src/runtime/engine/start-or-deliver-plan.ts', 'model'],
  ['src/runtime/engine/delivery-plan.ts', 'model'],
  ['src/runtime/engine/due-plan.ts', 'model'],
  ['src/runtime/store/', 'store'],
  ['src/runtime/store/sqlite/', 'dialects'],
  ['src/runtime/store/postgres/', 'dialects'],
  ['src/runtime/engine/', 'parts'],
  ['src/runtime/nats/', 'parts'],
  ['src/runtime/doctor/', 'parts'],
  ['src/runtime/manager.ts', 'parts'],
  ['src/runtime/telemetry.ts', 'parts'],
  // `tf.startOrDeliver`: checks its input with the manager and commits through the engine.
  ['src/runtime/start-or-deliver-input.ts', 'parts'],
  ['src/runtime/options.ts', 'wiring'],
  ['src/runtime/taskflow.ts', 'wiring'],
  ['src/tool/', 'faces'],
  ['src/ui/', 'faces'],
  ['src/cli/', 'faces'],
  ['src/adapters/', 'adapters'],
  ['src/index.ts', 'entries'],
  ['src/postgres.ts', 'entries'],
  ['src/nats.ts', 'entries'],
  ['src/ui/index.ts', 'entries'],
];

/**
 * The layer rule of ARCHITECTURE.md, "each imports only the ones below it":
 * what each layer must never import. The tool, the inspector and the CLI are
 * three faces over the runtime that do not go through one another, except that
 * the CLI starts the inspector (`taskflow ui`). The entry files may import
 * anything.
 */
const LAYERS: Readonly<Record<string, readonly string[]>> = {
  'src/runtime/': ['src/tool/', 'src/ui/', 'src/cli/', 'src/adapters/'],
  'src/tool/': ['src/ui/', 'src/cli/', 'src/adapters/'],
  'src/ui/': ['src/tool/', 'src/cli/', 'src/adapters/'],
  'src/cli/': ['src/tool/', 'src/adapters/'],
  'src/adapters/': ['src/ui/', 'src/cli/'],
};
const ENTRY_FILES = new Set(FLOORS.filter(([, floor]) => floor === 'entries').map(([prefix]) => prefix));

interface Import {
  from: string;
  to: string;
}

function sourceFiles(): string[] {
  return (readdirSync(join(root, 'src'), { recursive: true }) as string[])
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => `src/${name.split(sep).join('/')}`)
    .sort();
}

const files = sourceFiles();
const known = new Set(files);

/** Every relative import of every source file, resolved to the file it names (`./x.js` is `./x.ts`). */
function readImports(): { imports: Import[]; unresolved: string[] } {
  const imports: Import[] = [];
  const unresolved: string[] = [];
  for (const from of files) {
    const seen = new Set<string>();
    for (const { fileName } of ts.preProcessFile(readFileSync(join(root, from), 'utf8'), true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const to = relative(root, join(root, dirname(from), fileName)).split(sep).join('/').replace(/\.js$/, '.ts');
      if (!known.has(to)) unresolved.push(`${from} imports ${fileName}, which is no source file`);
      else if (!seen.has(to)) imports.push({ from, to });
      seen.add(to);
    }
  }
  return { imports, unresolved };
}

const { imports, unresolved } = readImports();

function floorOf(file: string): FloorName | undefined {
  let best: readonly [string, FloorName] | undefined;
  for (const entry of FLOORS) if (file.startsWith(entry[0]) && (best === undefined || entry[0].length > best[0].length)) best = entry;
  return best?.[1];
}

/** Each import cycle, as the shortest path from a file back to itself through each import inside a knot. */
function cycles(edges: readonly Import[]): string[] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const shortestPath = (start: string, goal: string): string[] | undefined => {
    const cameFrom = new Map<string, string>([[start, start]]);
    const queue = [start];
    for (let at = queue.shift(); at !== undefined; at = queue.shift()) {
      if (at === goal) {
        const path = [at];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
        return path;
      }
      for (const to of next.get(at) ?? []) {
        if (!cameFrom.has(to)) {
          cameFrom.set(to, at);
          queue.push(to);
        }
      }
    }
    return undefined;
  };
  const found = new Set<string>();
  for (const { from, to } of edges) {
    const back = shortestPath(to, from);
    if (back === undefined) continue;
    // `back` runs from `to` round to `from`: the cycle's files once each. Start it at its first file in
    // sort order, so the same cycle found through another of its imports reads the same.
    const first = back.indexOf([...back].sort()[0]!);
    const loop = [...back.slice(first), ...back.slice(0, first)];
    found.add([...loop, loop[0]!].join(' → '));
  }
  return [...found.values()].sort();
}

describe('the house (docs/architecture.md)', () => {
  it('resolves every relative import to a source file', () => {
    expect(unresolved).toEqual([]);
  });

  it('puts every source file on a floor of the table', () => {
    expect(files.filter((file) => floorOf(file) === undefined)).toEqual([]);
  });

  it('has no import cycles', () => {
    expect(cycles(imports)).toEqual([]);
  });

  it('has no import that runs up a floor', () => {
    const upward = imports
      .filter(({ from, to }) => FLOOR[floorOf(from)!] < FLOOR[floorOf(to)!])
      .map(({ from, to }) => `${from} (${floorOf(from)}) imports ${to} (${floorOf(to)}), a floor up`);
    expect(upward).toEqual([]);
  });

  it('keeps the layers of ARCHITECTURE.md: the runtime imports no tool, inspector, CLI or adapter; the faces do not go through one another', () => {
    const crossing = imports
      .filter(({ from }) => !ENTRY_FILES.has(from))
      .flatMap(({ from, to }) => {
        const layer = Object.keys(LAYERS).find((prefix) => from.startsWith(prefix));
        const barred = layer === undefined ? undefined : LAYERS[layer]!.find((prefix) => to.startsWith(prefix));
        return barred === undefined ? [] : [`${from} (${layer}) imports ${to}, in ${barred}, which ${layer} never imports`];
      });
    expect(crossing).toEqual([]);
  });
});
