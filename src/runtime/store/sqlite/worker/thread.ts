/**
 * The worker thread of a SqliteWorkerStore: it owns the better-sqlite3 connection
 * (a {@link SqliteFlowStore}), so no statement, fsync or lock wait runs on the
 * host's event loop. Plans stay on the main thread: for each item of a commit this
 * thread loads, sends what it loaded, and applies the decision that comes back.
 * Commits that queue while a transaction is open share the next one (group commit).
 */
import { serialize } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { Decision, Loaded } from '../../contract.js';
import type { GroupUnit, ItemOutcome } from '../group-transaction.js';
import { openSqliteStore } from '../open.js';
import type { SqliteFlowStore } from '../store.js';
import { FORWARDED_CALLS, toWire, type FromWorker, type ToWorker, type WireOutcome, type WorkerSettings } from './protocol.js';

/** At most this many commits share a transaction, so none holds the write lock for long. */
const MAX_GROUP = 128;

const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);

function open(): SqliteFlowStore | undefined {
  try {
    return openSqliteStore((workerData as WorkerSettings).options);
  } catch (error) {
    send({ t: 'failed', error: toWire(error) });
    port.close(); // the thread ends: nothing else keeps it alive
    return undefined;
  }
}
const opened = open();
if (opened) {
  send({ t: 'ready' });
  port.on('message', onMessage);
}
const store = opened!;

const forwarded = new Set<string>(FORWARDED_CALLS);
type Commit = Extract<ToWorker, { t: 'commit' }>;
const queued: Commit[] = [];
/** The group commits under way, while there are any. */
let grouping: Promise<void> | undefined;
/** Plans awaited from the main thread, by `${commit id}:${item}`. */
const awaitingPlan = new Map<string, (decision: Decision<unknown> | undefined) => void>();
let unwatch: (() => void) | undefined;

function onMessage(message: ToWorker): void {
  switch (message.t) {
    case 'commit':
      queued.push(message);
      grouping ??= commitQueued();
      return;
    case 'decision': {
      const key = `${message.id}:${message.item}`;
      const resume = awaitingPlan.get(key);
      awaitingPlan.delete(key);
      resume?.(message.decision === undefined ? undefined : ({ ...message.decision, result: undefined } as Decision<unknown>));
      return;
    }
    case 'call':
      void answer(message.id, () => {
        if (!forwarded.has(message.method)) throw new Error(`unknown store call ${message.method}`);
        return (store[message.method] as (...args: unknown[]) => Promise<unknown>)(...message.args);
      });
      return;
    case 'pragma':
      void answer(message.id, async () => store.sqlite.pragma(message.source, { simple: message.simple }));
      return;
    case 'watch':
      unwatch?.();
      unwatch = message.on ? store.watchForeignCommits(() => send({ t: 'foreign' })) : undefined;
      return;
    case 'close':
      void answer(message.id, async () => {
        unwatch?.();
        while (grouping) await grouping; // what was queued before the close is committed
        await store.close();
      }).then(() => port.close());
      return;
  }
}

async function answer(id: number, work: () => Promise<unknown>): Promise<void> {
  try {
    send({ t: 'reply', id, value: await work() });
  } catch (error) {
    send({ t: 'reply', id, error: toWire(error) });
  }
}

/** Commits everything queued, a group at a time; a lone commit starts at once (no waiting for company). */
async function commitQueued(): Promise<void> {
  try {
    while (queued.length > 0) {
      const group = queued.splice(0, MAX_GROUP);
      const units: GroupUnit[] = group.map((commit) => (commit.claim ? { loads: commit.loads, claim: commit.claim } : { loads: commit.loads }));
      try {
        const outcomes = await store.commitGroup(units, (unit, item, loaded) => guessed(group[unit]!, item, loaded) ?? planOnMain(group[unit]!.id, item, loaded));
        outcomes.forEach((unitOutcomes, unit) => send({ t: 'committed', id: group[unit]!.id, outcomes: unitOutcomes.map(onWire) }));
      } catch (error) {
        const wire = toWire(error);
        for (const commit of group) send({ t: 'reply', id: commit.id, error: wire });
      }
    }
  } finally {
    grouping = undefined;
  }
}

/** The plan made ahead on the main thread, when it was made from exactly what this thread loaded. */
function guessed(commit: Commit, item: number, loaded: Loaded): Promise<Decision<unknown> | undefined> | undefined {
  const guess = commit.guesses?.[item];
  if (!guess) return undefined;
  const bytes = Buffer.from(guess.loaded.buffer, guess.loaded.byteOffset, guess.loaded.byteLength);
  if (!bytes.equals(serialize(loaded))) return undefined;
  return Promise.resolve(guess.decision === undefined ? undefined : ({ ...guess.decision, result: undefined } as Decision<unknown>));
}

function planOnMain(id: number, item: number, loaded: Loaded): Promise<Decision<unknown> | undefined> {
  return new Promise((resolve) => {
    awaitingPlan.set(`${id}:${item}`, resolve);
    send({ t: 'loaded', id, item, loaded });
  });
}

function onWire(outcome: ItemOutcome): WireOutcome {
  if (outcome.ok) return outcome;
  return outcome.error === undefined ? { ok: false } : { ok: false, error: toWire(outcome.error) };
}
