/**
 * `npm run screenshots`: seeds a database with a few flows, opens the inspector
 * in headless Chromium (as test/ui-browser.test.ts does) and writes
 * docs/inspector-overview.png and docs/inspector-flow.png for the README.
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

const inspector = await startInspector({ taskflow: tf });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(inspector.loginUrl);
  await page.screenshot({ path: join(docs, 'inspector-overview.png'), fullPage: true });
  await page.goto(`${inspector.url}flows/${invoice.id}`);
  await page.screenshot({ path: join(docs, 'inspector-flow.png'), fullPage: true });
  process.stdout.write(`wrote ${join(docs, 'inspector-overview.png')} and ${join(docs, 'inspector-flow.png')}\n`);
} finally {
  await browser.close();
  await inspector.close();
  await tf.close();
  rmSync(folder, { recursive: true, force: true });
}
