import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowError, openTaskflow, type Flow, type Taskflow } from '../../src/index.js';
import { AgentProcess } from './agent-process.js';
import { checkInvariants, type InvariantReport } from './invariants.js';
import { correlationOf, EVENT_TOPIC, nextWait, scriptFor, SIGNAL, waitsDone } from './script.js';

/** A fault the orchestrator injects again and again while the agent works. */
export interface Fault {
  readonly name: string;
  /** One episode: break something, wait, mend it. Must leave the part working when it resolves. */
  inject(random: () => number): Promise<void>;
  /** Episodes so far. */
  readonly count: number;
  dispose(): Promise<void>;
}

/** How events reach the agent: straight into the database, or published on the bus. */
export interface EventSender {
  /** False when the event could not be handed over now (the bus is down): it is sent again later. */
  send(correlationId: string, eventId: string, payload: unknown): Promise<boolean>;
  dispose(): Promise<void>;
}

export interface ScenarioOptions {
  name: string;
  /** SQLite path or PostgreSQL URL. */
  database: string;
  /** Flows open at once: new ones start as others finish, for `duration` ms. */
  inFlight: number;
  /** How long new flows keep starting (ms); the run then waits for every open flow to finish. */
  duration: number;
  /** Waits per flow. */
  steps: number;
  /** The agent is SIGKILLed after a random pause in this range (ms); undefined: never. */
  killEvery?: [number, number];
  /** Pause between fault episodes (ms). */
  faultEvery?: [number, number];
  faults?: Fault[];
  /** Default: deliveries straight through the orchestrator's own handle. */
  events?: EventSender;
  /** Passed to the agent process: it connects its bridge there. */
  natsUrl?: string;
  /** Give up after this long (ms). */
  deadline: number;
  seed?: number;
}

/** One row of the torture table. */
export interface ScenarioResult extends InvariantReport {
  name: string;
  kills: number;
  faults: number;
  /** Calls of the orchestrator that failed with `storage` while a part was down (retried). */
  retried: number;
  unhandled: number;
  seconds: number;
  /** Every invariant holds and every flow finished. */
  ok: boolean;
}

/** A small deterministic generator, so a failing run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4_294_967_296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = (random: () => number, [min, max]: [number, number]) => min + Math.floor(random() * (max - min));

const OWNER = 'agent:torture:session:1';

/**
 * Runs the agent in a process of its own over `flows` flows of `steps` waits each,
 * kills it at random instants, injects the faults, delivers every event (some
 * early, some twice) and signal, and checks the invariants once every flow
 * finished or the deadline passed.
 */
export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const random = seededRandom(options.seed ?? Date.now());
  const folder = mkdtempSync(join(tmpdir(), 'taskflow-torture-'));
  const ledger = join(folder, 'ledger.jsonl');
  const started = Date.now();
  let retried = 0;
  const tf = await openTaskflow({ database: options.database, tickInterval: '1s' });
  const agent = new AgentProcess([options.database, ledger, ...(options.natsUrl ? [options.natsUrl] : [])]);
  const events = options.events ?? directEvents(tf);
  const ids: string[] = [];
  const sent = new Set<string>();
  let running = true;

  /** Retries a call that failed because a part is down; any other error is the caller's. */
  const persist = async <T>(call: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await call();
      } catch (error) {
        if (!(FlowError.isInstance(error) && error.code === 'storage') || Date.now() - started > options.deadline) throw error;
        retried++;
        await sleep(50);
      }
    }
  };

  try {
    /** Starts a flow parked on the first wait of its script. */
    const startFlow = async () => {
      const i = ids.length;
      const flow = await persist(() =>
        tf.manager.createManaged({ controllerId: 'torture', goal: `flow ${i}`, ownerSessionKey: OWNER, state: { script: scriptFor(i, options.steps) } }),
      );
      ids.push(flow.id);
      const begun = await persist(() => tf.manager.startRunning(flow.id));
      await persist(() => tf.manager.setWaiting(flow.id, nextWait(begun, 0, Date.now())!));
    };
    for (let i = 0; i < options.inFlight; i++) await startFlow();
    /** Starts the agent; one that dies before it is ready (its death is in its stderr) is started again. */
    const startAgent = async () => {
      while (Date.now() - started < options.deadline) {
        try {
          return await agent.start();
        } catch {
          await sleep(200);
        }
      }
    };
    await startAgent();

    const killer = (async () => {
      if (!options.killEvery) return;
      while (running) {
        await sleep(between(random, options.killEvery));
        if (!running) break;
        await agent.kill();
        await sleep(between(random, [0, 200]));
        if (running) await startAgent();
      }
    })();
    const faults = (async () => {
      if (!options.faults?.length) return;
      while (running) {
        await sleep(between(random, options.faultEvery ?? [500, 1500]));
        if (!running) break;
        await options.faults[Math.floor(random() * options.faults.length)]!.inject(random);
      }
    })();

    /** Sends the event a flow waits for (or will wait for next), sometimes twice. */
    const sendFor = async (flowId: string, step: number) => {
      const correlationId = correlationOf(flowId, step);
      if (sent.has(correlationId) && random() > 0.05) return;
      if (await events.send(correlationId, `evt-${correlationId}`, { paid: step })) sent.add(correlationId);
    };

    while (Date.now() - started < options.deadline) {
      const open = await openFlows();
      if (!open) {
        await sleep(100);
        continue;
      }
      const openCount = open.waiting.length + open.running.length + open.created.length;
      if (Date.now() - started < options.duration) {
        for (let n = openCount; n < options.inFlight; n++) await startFlow();
      } else if (openCount === 0) break;
      for (const flow of open.waiting) {
        const wait = flow.wait;
        const step = (flow.revision - 2) / 2;
        if (wait?.kind === 'external_event' && !wait.correlationId.endsWith('.never')) await attempt(() => sendFor(flow.id, step));
        if (wait?.kind === 'manual') await attempt(() => tf.engine.signal(flow.id, { signal: SIGNAL, payload: { step } }));
      }
      // Early events: sent while the flow still runs, they wait in the inbox for its next wait.
      for (const flow of open.running) {
        const done = waitsDone(flow);
        const next = nextWait(flow, done, Date.now());
        if (next?.kind === 'external_event' && !next.correlationId.endsWith('.never') && random() < 0.5) await attempt(() => sendFor(flow.id, done));
      }
      await sleep(25);
    }

    running = false;
    await Promise.all([killer, faults]);
    if (!agent.running) await startAgent();
    const exitCode = await agent.stop();
    if (exitCode !== 0) agent.stderr.push(`agent exited on its own: code ${exitCode} at the end`);
    const report = await checkInvariants(tf, ids, ledger);
    const unhandled = agent.unhandledErrors();
    report.problems.push(...unhandled.slice(0, 10));
    const result: ScenarioResult = {
      name: options.name,
      ...report,
      kills: agent.kills,
      faults: (options.faults ?? []).reduce((n, f) => n + f.count, 0),
      retried,
      unhandled: unhandled.length,
      seconds: (Date.now() - started) / 1000,
      ok: false,
    };
    result.ok =
      result.lost === 0 && result.illegal === 0 && result.undelivered === 0 && result.unhandled === 0 && result.finished === result.flows;
    if (result.finished !== result.flows) result.problems.push(`${result.flows - result.finished} flows did not finish by the deadline`);
    return result;
  } finally {
    running = false;
    await agent.stop(2_000).catch(() => undefined);
    await events.dispose().catch(() => undefined);
    await tf.close().catch(() => undefined);
    for (const fault of options.faults ?? []) await fault.dispose().catch(() => undefined);
    rmSync(folder, { recursive: true, force: true });
  }

  /** A refusal because the flow moved on meanwhile is expected; a part that is down is retried next round. */
  async function attempt(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      if (FlowError.isInstance(error) && ['illegal_transition', 'storage', 'invalid_input', 'not_found'].includes(error.code)) {
        if (error.code === 'storage') retried++;
        return;
      }
      throw error;
    }
  }

  /** The flows not finished yet, by status; undefined while the database is down. */
  async function openFlows(): Promise<Record<'waiting' | 'running' | 'created', Flow[]> | undefined> {
    try {
      const [waiting, running, created] = await Promise.all(
        (['waiting', 'running', 'created'] as const).map((status) => tf.manager.listByStatus(status, { limit: 5_000 })),
      );
      return { waiting: waiting!, running: running!, created: created! };
    } catch (error) {
      if (FlowError.isInstance(error) && error.code === 'storage') {
        retried++;
        return undefined;
      }
      throw error;
    }
  }
}

/** Events delivered by the orchestrator's own runtime handle (`engine.deliver`), as the CLI or a webhook would. */
export function directEvents(tf: Taskflow): EventSender {
  return {
    async send(correlationId, eventId, payload) {
      await tf.engine.deliver({ topic: EVENT_TOPIC, correlationId, eventId, payload });
      return true;
    },
    async dispose() {},
  };
}
