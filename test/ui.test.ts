import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FlowError } from '../src/index.js';
import { startInspector } from '../src/ui/index.js';
import { CLI_BIN } from './support/cli-run.js';
import { newFlow, openTestTaskflow } from './support/taskflow.js';
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
});
