/**
 * `npm run screenshots`: seeds a database with a few flows, opens the inspector
 * in headless Chromium (as test/ui-browser.test.ts does) and writes
 * docs/inspector-overview.png, docs/inspector-flow.png and docs/inspector-waits.png for the README.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { openTaskflow, silentLogger } from '../src/index.js';
import { startInspector } from '../src/ui/index.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const docs = fileURLToPath(new URL('../docs/', import.meta.url));
mkdirSync(docs, { recursive: true });
const folder = mkdtempSync(join(tmpdir(), 'taskflow-shots-'));
const tf = await openTaskflow({ database: join(folder, 'flows.db'), logger: silentLogger });
const owner = 'agent:kate:session:1';
const minute = 60_000;

async function flow(goal: string, controllerId: string) {
  const created = await tf.manager.createManaged({ controllerId, goal, ownerSessionKey: owner });
  return tf.manager.startRunning(created.id);
}
const invoice = await flow('Ship order 42 once invoice INV-42 is paid', 'kate/orders');
await tf.manager.updateState(invoice.id, { order: 42, invoice: 'INV-42', customer: { name: 'Ada', tier: 'gold' } }, 'await_payment');
await tf.manager.setWaiting(invoice.id, { kind: 'external_event', topic: 'invoice.paid', correlationId: 'INV-42', timeoutAt: Date.now() + 3 * 24 * 60 * minute });
for (const [i, goal] of ['Send the weekly report', 'Remind Bob about the contract', 'Retry the failed export'].entries()) {
  const f = await flow(goal, 'kate/schedules');
  await tf.manager.setWaiting(f.id, { kind: 'timer', at: Date.now() + (i + 1) * 17 * minute });
}
const approval = await flow('Publish the release notes after approval', 'kate/releases');
await tf.manager.setWaiting(approval.id, { kind: 'manual', signal: 'approve' });
const done = await flow('Summarise yesterday\'s support tickets', 'kate/support');
await tf.manager.finish(done.id, { tickets: 14 });
await tf.engine.deliver({ topic: 'invoice.paid', correlationId: 'INV-77', payload: { amount: 120 } });
// Some movement for the charts: timers that fire a little late, signals, events, finished flows.
for (let i = 0; i < 12; i++) {
  const f = await flow(`Follow up on ticket ${100 + i}`, 'kate/support');
  const kind = i % 3;
  if (kind === 0) await tf.manager.setWaiting(f.id, { kind: 'timer', at: Date.now() + 20 + i * 5 });
  else if (kind === 1) await tf.manager.setWaiting(f.id, { kind: 'manual', signal: 'done' });
  else await tf.manager.setWaiting(f.id, { kind: 'external_event', topic: 'ticket.closed', correlationId: `T-${100 + i}` });
  await new Promise((resolve) => setTimeout(resolve, 30 + (i % 4) * 10));
  await tf.engine.tick();
  if (kind === 1) await tf.engine.signal(f.id, { signal: 'done' });
  if (kind === 2) await tf.engine.deliver({ topic: 'ticket.closed', correlationId: `T-${100 + i}` });
  if (i % 2 === 0) await tf.manager.finish(f.id);
}
await flow('Wait for the parcel', 'kate/orders').then((f) => tf.manager.setWaiting(f.id, { kind: 'external_event', topic: 'parcel.delivered', correlationId: 'P-9' }));

const inspector = await startInspector({ taskflow: tf });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(inspector.loginUrl);
  await page.waitForSelector('#chart-resumes canvas');
  await page.screenshot({ path: join(docs, 'inspector-overview.png'), fullPage: true });
  await page.goto(`${inspector.url}flows/${invoice.id}`);
  await page.screenshot({ path: join(docs, 'inspector-flow.png'), fullPage: true });
  await page.goto(`${inspector.url}waits`);
  await page.screenshot({ path: join(docs, 'inspector-waits.png'), fullPage: true });
  process.stdout.write(`wrote inspector-overview.png, inspector-flow.png and inspector-waits.png in ${docs}\n`);
} finally {
  await browser.close();
  await inspector.close();
  await tf.close();
  rmSync(folder, { recursive: true, force: true });
}
