import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer } from '../support/nats-server.js';
import { startPgCluster } from '../support/pg-cluster.js';
import { diskFull, lockHolder, mountSmallDisk, natsCrash, postgresCrash } from './faults.js';
import { runHostileInput, type HostileResult } from './hostile.js';
import { natsEvents } from './nats-events.js';
import { runScenario, type ScenarioResult } from './orchestrator.js';

/** How hard a run pushes: `short` is what CI runs, `full` is `npm run torture`. */
export interface TortureSize {
  /** Flows open at once. */
  inFlight: number;
  /** How long new flows keep starting, in ms. */
  duration: number;
  steps: number;
  deadline: number;
  hostileCalls: number;
  /** The small disk of the disk-full scenario, in MiB: room for the run's flows, filled by the fault. */
  diskMiB: number;
}

export const SIZES: Record<'short' | 'full', TortureSize> = {
  short: { inFlight: 20, duration: 10_000, steps: 4, deadline: 120_000, hostileCalls: 400, diskMiB: 16 },
  full: { inFlight: 100, duration: 120_000, steps: 6, deadline: 600_000, hostileCalls: 5_000, diskMiB: 256 },
};

export type Skipped = { name: string; skipped: string };
export type TortureRow = ScenarioResult | HostileResult | Skipped;

export interface TortureScenario {
  name: string;
  run(size: TortureSize, seed: number): Promise<TortureRow>;
}

function tempFolder(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'taskflow-torture-db-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const SCENARIOS: TortureScenario[] = [
  {
    name: 'sqlite: agent SIGKILLed at random',
    async run(size, seed) {
      const folder = tempFolder();
      try {
        return await runScenario({ name: this.name, database: join(folder.path, 'taskflow.db'), ...size, killEvery: [200, 900], seed });
      } finally {
        folder.remove();
      }
    },
  },
  {
    name: 'sqlite: write lock held by another process',
    async run(size, seed) {
      const folder = tempFolder();
      const database = join(folder.path, 'taskflow.db');
      try {
        return await runScenario({ name: this.name, database, ...size, killEvery: [1_000, 3_000], faults: [lockHolder(database)], faultEvery: [300, 1_500], seed });
      } finally {
        folder.remove();
      }
    },
  },
  {
    name: 'sqlite: disk full',
    async run(size, seed) {
      const folder = tempFolder();
      const disk = mountSmallDisk(join(folder.path, 'disk'), size.diskMiB);
      if (!disk) {
        folder.remove();
        return { name: this.name, skipped: 'this machine cannot mount a small file system (mount -t tmpfs needs root)' };
      }
      try {
        return await runScenario({ name: this.name, database: join(disk.path, 'taskflow.db'), ...size, killEvery: [1_000, 3_000], faults: [diskFull(disk.path)], faultEvery: [500, 2_000], seed });
      } finally {
        disk.unmount();
        folder.remove();
      }
    },
  },
  {
    name: 'nats: bus killed and restarted, events over JetStream',
    async run(size, seed) {
      const folder = tempFolder();
      const server = await startNatsServer();
      const events = await natsEvents(server.url);
      try {
        return await runScenario({
          name: this.name,
          database: join(folder.path, 'taskflow.db'),
          ...size,
          killEvery: [1_000, 3_000],
          faults: [natsCrash(server)],
          faultEvery: [1_000, 3_000],
          events,
          natsUrl: server.url,
          seed,
        });
      } finally {
        await server.dispose();
        folder.remove();
      }
    },
  },
  {
    name: 'postgres: server stopped (immediate) and restarted',
    async run(size, seed) {
      const cluster = await startPgCluster();
      try {
        const database = await cluster.createDatabase();
        const server = { crash: () => cluster.stop('immediate'), start: () => cluster.start() };
        return await runScenario({ name: this.name, database, ...size, killEvery: [1_000, 3_000], faults: [postgresCrash(server)], faultEvery: [1_000, 3_000], seed });
      } finally {
        await cluster.dispose();
      }
    },
  },
  {
    name: 'hostile input at every public call',
    run: (size, seed) => runHostileInput(size.hostileCalls, seed),
  },
];

/** The torture table, as markdown. */
export function tortureTable(rows: readonly TortureRow[]): string {
  const lines = [
    '| scenario | flows | resumes | redelivered | kills | faults | retried | lost | illegal | undelivered | unhandled | calls (refused) | untyped | changed by refusal | s | ok |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    if ('skipped' in row) {
      lines.push(`| ${row.name} | skipped: ${row.skipped} |||||||||||||||`);
    } else if ('calls' in row) {
      lines.push(`| ${row.name} | | | | | | | | ${row.illegal} | | | ${row.calls} (${row.refused}) | ${row.untyped} | ${row.changedByRefusal} | ${row.seconds.toFixed(1)} | ${row.ok ? 'yes' : 'NO'} |`);
    } else {
      lines.push(
        `| ${row.name} | ${row.finished}/${row.flows} | ${row.resumes} | ${row.redelivered} | ${row.kills} | ${row.faults} | ${row.retried} | ${row.lost} | ${row.illegal} | ${row.undelivered} | ${row.unhandled} | | | | ${row.seconds.toFixed(1)} | ${row.ok ? 'yes' : 'NO'} |`,
      );
    }
  }
  return lines.join('\n');
}
