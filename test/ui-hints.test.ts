import { describe, expect, it } from 'vitest';
import { startInspector } from '../src/ui/index.js';
import { newFlow, openTestTaskflow } from './support/taskflow.js';

describe('the inspector shows near misses', () => {
  it('lists a kept event whose key differs in case from the key a flow waits on, with the flow', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'inv-42' });
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42' });
    const inspector = await startInspector({ taskflow: tf });
    try {
      const page = await (await fetch(inspector.url)).text();
      const table = /<table id="near-misses">([\s\S]*?)<\/table>/.exec(page)?.[1];
      expect(table).toContain('<td>payments.received/INV-42</td><td>payments.received/inv-42</td><td>only in case</td>');
      expect(table).toContain(`href="/flows/${flow.id}"`);
    } finally {
      await inspector.close();
    }
  });

  it('the waits page shows the near miss beside the waiting key and beside the kept key', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged(newFlow);
    await tf.manager.startRunning(flow.id);
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'inv-42' });
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42' });
    const inspector = await startInspector({ taskflow: tf });
    try {
      const page = await (await fetch(new URL('/waits', inspector.url))).text();
      expect(page).toContain('events kept for payments.received/INV-42 (differs only in case)');
      expect(page).toContain('flows wait on payments.received/inv-42 (differs only in case)');
    } finally {
      await inspector.close();
    }
  });

  it('shows no near-miss table when there is none', async () => {
    const tf = await openTestTaskflow();
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42' });
    const inspector = await startInspector({ taskflow: tf });
    try {
      expect(await (await fetch(inspector.url)).text()).not.toContain('near-misses');
    } finally {
      await inspector.close();
    }
  });
});
