import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { openTaskflow, type Taskflow } from '../src/index.js';
import { startInspector, type Inspector } from '../src/ui/index.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The inspector in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), on a real SQLite file, with a second process as the agent.
 */
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`ui-browser: skipped, ${CHROMIUM} is absent (apt-get install chromium)`);

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const owner = 'agent:kate:session:1';
const agents: ChildProcess[] = [];
afterAll(() => {
  for (const child of agents) if (child.exitCode === null) child.kill('SIGKILL');
});
const XSS_GOAL = '<img src=x onerror="document.title=\'pwned\'">';

describe.skipIf(!haveChromium)('the web inspector in a browser', () => {
  let tf: Taskflow;
  let inspector: Inspector;
  let browser: Browser;
  let context: BrowserContext;
  let path: string;
  let folder: string;

  async function parked(goal: string, controllerId: string, wait: Parameters<Taskflow['manager']['setWaiting']>[1]) {
    const flow = await tf.manager.createManaged({ controllerId, goal, ownerSessionKey: owner });
    await tf.manager.startRunning(flow.id);
    return tf.manager.setWaiting(flow.id, wait);
  }

  beforeAll(async () => {
    // One file for the whole suite (support/temp-db removes its files after each test).
    folder = mkdtempSync(join(tmpdir(), 'taskflow-ui-'));
    path = join(folder, 'flows.db');
    tf = await openTaskflow({ database: path });
    inspector = await startInspector({ taskflow: tf, chartRefresh: 0 });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext();
    const login = await context.newPage();
    await login.goto(inspector.loginUrl);
    await login.close();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await inspector?.close();
    await tf?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  async function open(url: string): Promise<Page> {
    const page = await context.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(new URL(url, inspector.url).toString());
    return page;
  }

  it('shows the overview with flows by status and the timers due soon', async () => {
    const flow = await parked('send the weekly report', 'kate/reports', { kind: 'timer', at: Date.now() + 3_600_000 });
    const page = await open('/');
    await expect.poll(() => page.locator('#by-status a[data-status="waiting"]').innerText()).not.toBe('0');
    expect(await page.locator('#timers').innerText()).toContain(flow.id);
    expect(await page.locator('#by-kind').innerText()).toContain('timer');
    await page.close();
  });

  it('filters the list to one flow and reads its timeline', async () => {
    const flow = await parked('reconcile invoice INV-9', 'kate/billing', { kind: 'external_event', topic: 'invoice.paid', correlationId: 'INV-9' });
    await tf.manager.updateState(flow.id, { invoice: 'INV-9' }).catch(() => undefined);
    const page = await open('/flows');
    await page.selectOption('select[name="status"]', 'waiting');
    await page.fill('input[name="controller"]', 'kate/billing');
    await page.click('form.filters button');
    await page.waitForURL(/controller=kate%2Fbilling/);
    const rows = page.locator('#flows tr[data-flow]');
    expect(await rows.count()).toBe(1);
    await page.click(`a.flow-link:text("${flow.id}")`);
    await page.waitForURL(new RegExp(`/flows/${flow.id}$`));
    const kinds = await page.locator('#timeline li').evaluateAll((items) => items.map((li) => li.getAttribute('data-kind')));
    expect(kinds.slice(0, 3)).toEqual(['created', 'started', 'waiting']);
    expect(await page.locator('#wait').innerText()).toContain('invoice.paid / INV-9');
    await page.close();
  });

  it('cancels one flow and signals another, and both pages change', async () => {
    const toCancel = await parked('wait for approval A', 'kate/approvals', { kind: 'manual', signal: 'approve' });
    const toSignal = await parked('wait for approval B', 'kate/approvals', { kind: 'manual', signal: 'approve' });
    const cancelPage = await open(`/flows/${toCancel.id}`);
    const watchPage = await open(`/flows/${toSignal.id}`);
    await cancelPage.click('#cancel');
    await cancelPage.waitForURL(/done=/);
    expect(await cancelPage.locator('#status').innerText()).toBe('cancelled');
    expect(await cancelPage.locator('#timeline li').last().getAttribute('data-kind')).toBe('cancelled');

    const signalPage = await open(`/flows/${toSignal.id}`);
    await signalPage.fill('input[name="payload"]', '{"approved": true}');
    await signalPage.click('#signal');
    await signalPage.waitForURL(/done=/);
    expect(await signalPage.locator('#status').innerText()).toBe('running');
    expect((await tf.manager.get(toSignal.id))!.status).toBe('running');
    // The page opened before the signal follows it live, without a reload.
    await expect.poll(() => watchPage.locator('#status').innerText(), { timeout: 15_000 }).toBe('running');
    for (const page of [cancelPage, watchPage, signalPage]) await page.close();
  });

  it('shows a flow resume live while the agent runs in another process', async () => {
    const flow = await parked('resume me from the other process', 'kate/timers', { kind: 'timer', at: Date.now() + 1_500 });
    const page = await open(`/flows/${flow.id}`);
    expect(await page.locator('#status').innerText()).toBe('waiting');
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1));
    const agent = spawnAgent(path, flow.id);
    await agent.line(/^finished /);
    await expect.poll(() => page.locator('#status').innerText(), { timeout: 15_000 }).toBe('finished');
    // The same document: the page changed in place, timeline included.
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(1);
    const kinds = await page.locator('#timeline li').evaluateAll((items) => items.map((li) => li.getAttribute('data-kind')));
    expect(kinds.slice(-2)).toEqual(['resumed', 'finished']);
    await page.close();
  });

  it('renders a goal of markup as text', async () => {
    const flow = await parked(XSS_GOAL, 'kate/xss', { kind: 'manual' });
    await tf.manager.updateState(flow.id, { note: '<script>document.title="pwned"</script>' }).catch(() => undefined);
    const page = await open(`/flows/${flow.id}`);
    expect(await page.locator('#goal').innerText()).toBe(XSS_GOAL);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.locator('main script').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');
    const list = await open('/flows?status=waiting&controller=kate%2Fxss');
    expect(await list.locator('td.goal').innerText()).toBe(XSS_GOAL);
    expect(await list.locator('main img').count()).toBe(0);
    await page.close();
    await list.close();
  });

  it('refuses an action without the token', async () => {
    const flow = await parked('keep me waiting', 'kate/guarded', { kind: 'manual' });
    const stranger = await browser.newContext();
    const page = await stranger.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(new URL(`/flows/${flow.id}`, inspector.url).toString());
    // Without the cookie, the form asks for the token; a wrong one is refused.
    await page.fill('#actions form:has(#cancel) input[name="token"]', 'not-the-token');
    await page.click('#cancel');
    await page.waitForLoadState();
    expect(await page.locator('#error').innerText()).toContain('needs the token');
    const status = await page.evaluate(async (url) => (await fetch(url, { method: 'POST' })).status, `/flows/${flow.id}/cancel`);
    expect(status).toBe(401);
    expect((await tf.manager.get(flow.id))!.status).toBe('waiting');
    await stranger.close();
  });

  it('draws the overview charts from the flows\' audit events', async () => {
    const timed = await parked('chart a timer', 'kate/charts', { kind: 'timer', at: Date.now() + 30 });
    const signalled = await parked('chart a signal', 'kate/charts', { kind: 'manual' });
    await new Promise((resolve) => setTimeout(resolve, 60));
    await tf.engine.tick();
    await tf.engine.signal(signalled.id, {});
    expect((await tf.manager.get(timed.id))!.status).toBe('running');
    const problems: string[] = [];
    const page = await context.newPage();
    page.on('console', (message) => void (message.type() === 'error' && problems.push(message.text())));
    page.on('pageerror', (error) => void problems.push(error.message));
    await page.goto(inspector.url);
    for (const id of ['chart-resumes', 'chart-lateness', 'chart-throughput']) {
      await expect.poll(() => page.locator(`#${id} canvas`).count()).toBeGreaterThan(0);
    }
    const legend = await page.locator('#chart-resumes .u-legend').innerText();
    expect(legend).toContain('timer');
    expect(legend).toContain('signal');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('filters the list by step and by text in the goal', async () => {
    const wanted = await parked('Refund order 1234 to Ada', 'kate/refunds', { kind: 'manual' });
    await tf.manager.updateState(wanted.id, {}, 'refund_card').catch(() => undefined);
    await parked('Refund order 999 to Bob', 'kate/refunds', { kind: 'manual' });
    const page = await open('/flows');
    await page.selectOption('select[name="status"]', 'waiting');
    await page.fill('input[name="goal"]', 'ORDER 1234');
    await page.click('#filter');
    await page.waitForURL(/goal=ORDER\+1234/);
    expect(await page.locator('#flows tr[data-flow]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-flow')))).toEqual([wanted.id]);
    await page.fill('input[name="goal"]', '');
    await page.fill('input[name="step"]', 'refund_card');
    await page.click('#filter');
    await page.waitForURL(/step=refund_card/);
    expect(await page.locator('#flows tr[data-flow]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-flow')))).toEqual([wanted.id]);
    await page.close();
  });

  it('shows the waits page: timers by due time, event waits by key, kept events', async () => {
    const sooner = await parked('waits: sooner', 'kate/waits', { kind: 'timer', at: Date.now() + 600_000 });
    await parked('waits: event', 'kate/waits', { kind: 'external_event', topic: 'parcel.delivered', correlationId: 'P-1' });
    await parked('waits: event too', 'kate/waits', { kind: 'external_event', topic: 'parcel.delivered', correlationId: 'P-1' });
    await tf.engine.deliver({ topic: 'parcel.returned', correlationId: 'P-2', payload: { why: 'damaged' } });
    const page = await open('/');
    await page.click('header a[href="/waits"]');
    await page.waitForURL(/\/waits$/);
    expect(await page.locator('#wait-timers').innerText()).toContain(sooner.id);
    const key = page.locator('#event-waits tr', { hasText: 'P-1' });
    expect(await key.locator('td').allInnerTexts()).toEqual(['parcel.delivered', 'P-1', '2']);
    expect(await page.locator('#wait-inbox').innerText()).toContain('parcel.returned');
    await page.close();
  });

  it('resumes a waiting flow from its page, after confirmation', async () => {
    const flow = await parked('resume me by hand', 'kate/manual', { kind: 'external_event', topic: 'never.comes', correlationId: 'X-1' });
    const page = await open(`/flows/${flow.id}`);
    const questions: string[] = [];
    page.on('dialog', (dialog) => void questions.push(dialog.message()));
    await page.fill('#actions form:has(#resume) input[name="patch"]', '{"override": "operator"}');
    await page.click('#resume');
    await page.waitForURL(/done=/);
    expect(questions[0]).toContain('Resume this flow');
    expect(await page.locator('#status').innerText()).toBe('running');
    const resumed = (await tf.manager.get(flow.id))!;
    expect(resumed.state.override).toBe('operator');
    expect(await page.locator('#timeline li').last().innerText()).toContain('manual');
    await page.close();
  });

  it('follows commits the host makes through its own handle, live', async () => {
    const flow = await parked('moved by the host itself', 'kate/host', { kind: 'manual' });
    const page = await open(`/flows/${flow.id}`);
    expect(await page.locator('#status').innerText()).toBe('waiting');
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 2));
    await tf.engine.signal(flow.id, { payload: { by: 'host' } });
    await expect.poll(() => page.locator('#status').innerText(), { timeout: 15_000 }).toBe('running');
    await tf.manager.finish(flow.id);
    await expect.poll(() => page.locator('#status').innerText(), { timeout: 15_000 }).toBe('finished');
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(2);
    await page.close();
  });
});

/** Runs test/support/ui-agent-worker.ts in its own Node.js process. */
function spawnAgent(database: string, flowId: string): { line(match: RegExp): Promise<string> } {
  const script = fileURLToPath(new URL('./support/ui-agent-worker.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, database, flowId], { stdio: ['ignore', 'pipe', 'pipe'] });
  agents.push(child);
  let out = '';
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return {
    line: (match) =>
      new Promise((resolve, reject) => {
        // A hang guard only: on two busy cores the agent's Node.js alone took seconds to start.
        const end = Date.now() + 120_000;
        const check = () => {
          if (Date.now() > end) return reject(new Error(`agent printed no ${String(match)}: ${JSON.stringify(out)}`));
          const found = out.split('\n').find((l) => match.test(l));
          if (found !== undefined) resolve(found);
          else if (child.exitCode !== null) reject(new Error(`agent exited with ${child.exitCode}: ${out}`));
          else setTimeout(check, 20);
        };
        check();
      }),
  };
}

/** Used by the screenshots script: the same launch the tests use. */
export function screenshotsFolder(): string {
  const folder = new URL('../docs/', import.meta.url).pathname;
  mkdirSync(folder, { recursive: true });
  return folder;
}
