import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FlowError } from '../src/index.js';
import { hintKey, startInspector } from '../src/ui/index.js';
import { CLI_BIN } from './support/cli-run.js';
import { T0, newFlow, openTestTaskflow } from './support/taskflow.js';
import { tempDbPath } from './support/temp-db.js';
import { tempPgDatabase } from './support/pg-database.js';
import { until } from './support/until.js';
import { openTaskflow } from '../src/index.js';

/** The inspector over HTTP, without a browser: its guards and its CLI entry. */

async function waitingFlow() {
  const tf = await openTestTaskflow();
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  await tf.manager.setWaiting(flow.id, { kind: 'manual' });
  return { tf, flow };
}

describe('the web inspector over HTTP', () => {
  it('refuses an action posted from another origin, even with the token', async () => {
    const { tf, flow } = await waitingFlow();
    const inspector = await startInspector({ taskflow: tf });
    try {
      const response = await fetch(`${inspector.url}flows/${flow.id}/cancel`, {
        method: 'POST',
        headers: { 'x-taskflow-token': inspector.token, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
        redirect: 'manual',
      });
      expect(response.status).toBe(403);
      expect((await tf.manager.get(flow.id))!.status).toBe('waiting');
    } finally {
      await inspector.close();
    }
  });

  it('cancels a flow when the token comes in the header from the same origin', async () => {
    const { tf, flow } = await waitingFlow();
    const inspector = await startInspector({ taskflow: tf });
    try {
      const response = await fetch(`${inspector.url}flows/${flow.id}/cancel`, {
        method: 'POST',
        headers: { 'x-taskflow-token': inspector.token, origin: inspector.url.replace(/\/$/, '') },
        redirect: 'manual',
      });
      expect(response.status).toBe(303);
      expect((await tf.manager.get(flow.id))!.status).toBe('cancelled');
    } finally {
      await inspector.close();
    }
  });

  it('turns every action off with readOnly', async () => {
    const { tf, flow } = await waitingFlow();
    const inspector = await startInspector({ taskflow: tf, readOnly: true });
    try {
      const page = await (await fetch(`${inspector.url}flows/${flow.id}`)).text();
      expect(page).not.toContain('id="cancel"');
      const response = await fetch(`${inspector.url}flows/${flow.id}/cancel`, { method: 'POST', headers: { 'x-taskflow-token': inspector.token } });
      expect(response.status).toBe(403);
      expect((await tf.manager.get(flow.id))!.status).toBe('waiting');
    } finally {
      await inspector.close();
    }
  });

  it('will not listen on a non-loopback address without a token', async () => {
    const tf = await openTestTaskflow();
    const refusal = await startInspector({ taskflow: tf, host: '0.0.0.0' }).catch((error: unknown) => error);
    expect(FlowError.isInstance(refusal) && refusal.code).toBe('invalid_input');
  });

  it('asks for the token on every request when it listens beyond loopback', async () => {
    const tf = await openTestTaskflow();
    const token = 'a-long-operator-token-123';
    const inspector = await startInspector({ taskflow: tf, host: '0.0.0.0', token });
    try {
      const address = `http://127.0.0.1:${inspector.port}/`;
      expect((await fetch(address)).status).toBe(401);
      expect((await fetch(address, { headers: { 'x-taskflow-token': token } })).status).toBe(200);
    } finally {
      await inspector.close();
    }
  });

  it('pages through flows by keyset, each flow once', async () => {
    const tf = await openTestTaskflow();
    const ids = new Set<string>();
    for (let i = 0; i < 120; i++) {
      const flow = await tf.manager.createManaged({ ...newFlow, goal: `flow ${i}` });
      ids.add(flow.id);
    }
    const inspector = await startInspector({ taskflow: tf });
    try {
      const seen: string[] = [];
      let next: string | undefined = `${inspector.url}flows?status=created`;
      while (next) {
        const page: string = await (await fetch(next)).text();
        seen.push(...[...page.matchAll(/data-flow="([^"]+)"/g)].map((m) => m[1]!));
        const link: string | undefined = /id="next-page" href="([^"]+)"/.exec(page)?.[1];
        next = link ? new URL(link.replaceAll('&amp;', '&'), inspector.url).toString() : undefined;
      }
      expect(seen).toHaveLength(120);
      expect(new Set(seen)).toEqual(ids);
    } finally {
      await inspector.close();
    }
  });

  it('taskflow ui prints its address and the action token, and serves the overview', async () => {
    const { tf } = await waitingFlow();
    const child = spawn(process.execPath, [CLI_BIN, 'ui', '--db', tf.path, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await until(() => /action token: \S+/.test(out), 20_000);
      const url = /inspector at (\S+)/.exec(out)![1]!;
      const overview = await (await fetch(url)).text();
      expect(overview).toContain('Flows by status');
      expect(out).toMatch(/open http:\/\/127\.0\.0\.1:\d+\/login\?token=/);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('on PostgreSQL, pages by keyset and follows commits made by another runtime', async () => {
    const database = await tempPgDatabase();
    const agent = await openTaskflow({ database });
    const inspector = await startInspector({ database });
    try {
      const ids = new Set<string>();
      for (let i = 0; i < 60; i++) ids.add((await agent.manager.createManaged({ ...newFlow, goal: `pg flow ${i}` })).id);
      const seen: string[] = [];
      let next: string | undefined = `${inspector.url}flows?status=created`;
      while (next) {
        const page: string = await (await fetch(next)).text();
        seen.push(...[...page.matchAll(/data-flow="([^"]+)"/g)].map((m) => m[1]!));
        const link: string | undefined = /id="next-page" href="([^"]+)"/.exec(page)?.[1];
        next = link ? new URL(link.replaceAll('&amp;', '&'), inspector.url).toString() : undefined;
      }
      expect(new Set(seen)).toEqual(ids);
      expect(seen).toHaveLength(60);
      const revision = async () => ((await (await fetch(`${inspector.url}revision`)).json()) as { revision: number }).revision;
      const first = [...ids][0]!;
      await agent.manager.startRunning(first);
      const before = await revision();
      // PostgreSQL announces the commits that schedule work (a wait, a wake): a flow parking is one.
      await agent.manager.setWaiting(first, { kind: 'timer', at: Date.now() + 60_000 });
      await until(async () => (await revision()) > before, 20_000);
      const overview = await (await fetch(inspector.url)).text();
      expect(overview).toMatch(/data-status="waiting">1</);
    } finally {
      await inspector.close();
      await agent.close();
    }
  });

  it('resumes a waiting flow with a state patch, as taskflow resume does', async () => {
    const { tf, flow } = await waitingFlow();
    const inspector = await startInspector({ taskflow: tf });
    try {
      const page = await (await fetch(`${inspector.url}flows/${flow.id}`)).text();
      expect(page).toContain('id="resume"');
      const response = await fetch(`${inspector.url}flows/${flow.id}/resume`, {
        method: 'POST',
        headers: { 'x-taskflow-token': inspector.token, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ patch: '{"approved":true}' }),
        redirect: 'manual',
      });
      expect(response.status).toBe(303);
      const resumed = (await tf.manager.get(flow.id))!;
      expect(resumed.status).toBe('running');
      expect(resumed.state.approved).toBe(true);
      const events = await tf.manager.listEvents(flow.id);
      expect(events.at(-1)!.payload.reason).toBe('manual');
    } finally {
      await inspector.close();
    }
  });

  it('refuses a resume without the token, with a patch that is not an object, and when read-only', async () => {
    const { tf, flow } = await waitingFlow();
    const inspector = await startInspector({ taskflow: tf });
    const readOnly = await startInspector({ taskflow: tf, readOnly: true });
    try {
      const post = (url: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
        fetch(`${url}flows/${flow.id}/resume`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body), redirect: 'manual' });
      expect((await post(inspector.url, {})).status).toBe(401);
      expect((await post(inspector.url, { patch: '[1]' }, { 'x-taskflow-token': inspector.token })).status).toBe(409);
      expect((await post(readOnly.url, {}, { 'x-taskflow-token': readOnly.token })).status).toBe(403);
      expect((await (await fetch(`${readOnly.url}flows/${flow.id}`)).text())).not.toContain('id="resume"');
      expect((await tf.manager.get(flow.id))!.status).toBe('waiting');
    } finally {
      await inspector.close();
      await readOnly.close();
    }
  });

  it('shows the waits: timers by due time, event waits by key, kept events, and hints when the host gives them', async () => {
    const tf = await openTestTaskflow();
    const park = async (wait: Parameters<typeof tf.manager.setWaiting>[1], goal: string) => {
      const flow = await tf.manager.createManaged({ ...newFlow, goal });
      await tf.manager.startRunning(flow.id);
      return tf.manager.setWaiting(flow.id, wait);
    };
    const later = await park({ kind: 'timer', at: T0 + 120_000 }, 'later timer');
    const sooner = await park({ kind: 'timer', at: T0 + 60_000 }, 'sooner timer');
    await park({ kind: 'external_event', topic: 'invoice.paid', correlationId: 'INV-7' }, 'event wait');
    await park({ kind: 'external_event', topic: 'invoice.paid', correlationId: 'INV-7' }, 'event wait too');
    await tf.engine.deliver({ topic: 'invoice.paid', correlationId: 'INV-8', payload: { amount: 5 } });
    const inspector = await startInspector({
      taskflow: tf,
      keyHints: async (keys) => new Map(keys.filter((k) => k.correlationId === 'INV-8').map((k) => [hintKey(k), ['near miss: flows wait on INV-7']])),
    });
    try {
      const page = await (await fetch(`${inspector.url}waits`)).text();
      const timers = /<table id="wait-timers">([\s\S]*?)<\/table>/.exec(page)![1]!;
      expect(timers.indexOf(sooner.id)).toBeLessThan(timers.indexOf(later.id));
      expect(page).toMatch(/<td>invoice\.paid<\/td><td>INV-7<\/td><td>2<\/td>/);
      const inbox = /<table id="wait-inbox">([\s\S]*?)<\/table>/.exec(page)![1]!;
      expect(inbox).toContain('INV-8');
      expect(inbox).toContain('near miss: flows wait on INV-7');
    } finally {
      await inspector.close();
    }
  });

  it('shows notifications being retried and charts of resumes, lateness and throughput on the overview', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'timer', at: T0 + 1_000 });
    tf.clock.set(T0 + 1_400);
    await tf.engine.tick();
    const [claimed] = await tf.store.claimNotifications(tf.clock.now(), 1_000, 1);
    await tf.store.retryNotification(claimed!, tf.clock.now() + 5_000, 'onResume threw: payment API down');
    const inspector = await startInspector({ taskflow: tf });
    try {
      const page = await (await fetch(inspector.url)).text();
      expect(/<table id="retrying">[\s\S]*?<\/table>/.exec(page)![0]).toContain('onResume threw: payment API down');
      const spec = (id: string) => JSON.parse(new RegExp(`id="${id}" data-chart="([^"]*)"`).exec(page)![1]!.replaceAll('&quot;', '"')) as { series: { label: string; values: (number | null)[] }[] };
      expect(spec('chart-resumes').series.map((s) => [s.label, s.values.reduce<number>((a, v) => a + (v ?? 0), 0)])).toEqual([['timer', 1]]);
      expect(spec('chart-lateness').series[0]!.values).toEqual([400]);
      expect(spec('chart-throughput').series.map((s) => s.label)).toEqual(['created', 'finished']);
      expect((await fetch(`${inspector.url}assets/uplot.js`)).headers.get('content-type')).toContain('javascript');
    } finally {
      await inspector.close();
    }
  });

  it('filters the flow list by step and by text in the goal', async () => {
    const tf = await openTestTaskflow();
    const refund = await tf.manager.createManaged({ ...newFlow, goal: 'Refund order 7', currentStep: 'refund' });
    await tf.manager.createManaged({ ...newFlow, goal: 'ship order 8', currentStep: 'ship' });
    const inspector = await startInspector({ taskflow: tf });
    try {
      const ids = async (query: string) => [...(await (await fetch(`${inspector.url}flows?status=created&${query}`)).text()).matchAll(/data-flow="([^"]+)"/g)].map((m) => m[1]);
      expect(await ids('step=refund')).toEqual([refund.id]);
      expect(await ids('goal=REFUND')).toEqual([refund.id]);
      expect(await ids('goal=nothing')).toEqual([]);
    } finally {
      await inspector.close();
    }
  });

  it.each(['sqlite', 'postgres'] as const)('follows the host\'s own commits through its handle, live, on %s', async (dialect) => {
    const database = dialect === 'postgres' ? await tempPgDatabase() : tempDbPath();
    const tf = await openTaskflow({ database, telemetry: false });
    const inspector = await startInspector({ taskflow: tf });
    try {
      const revision = async () => ((await (await fetch(`${inspector.url}revision`)).json()) as { revision: number }).revision;
      let before = await revision();
      const flow = await tf.manager.createManaged(newFlow);
      await until(async () => (await revision()) > before, 20_000);
      before = await revision();
      await tf.manager.startRunning(flow.id);
      await until(async () => (await revision()) > before, 20_000);
    } finally {
      await inspector.close();
      await tf.close();
    }
  });

  it('recomputes the overview charts at most every chartRefresh, however often the page refreshes', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'manual' });
    const inspector = await startInspector({ taskflow: tf, chartRefresh: '30s' });
    try {
      const resumesCharted = async () => !(await (await fetch(inspector.url)).text()).includes('No resumes in this window.');
      expect(await resumesCharted()).toBe(false);
      await tf.engine.signal(flow.id, {});
      expect(await resumesCharted()).toBe(false);
      tf.clock.advance(30_000);
      expect(await resumesCharted()).toBe(true);
    } finally {
      await inspector.close();
    }
  });
});
