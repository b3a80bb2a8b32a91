import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskflowTool, FlowError, type TaskflowToolResult } from '../src/index.js';
import { startNatsServer, type NatsServer } from './support/nats-server.js';
import { openTestTaskflow } from './support/taskflow.js';
import { flowOf, openToolFixture, OWNER, snapshotDatabase, startInput } from './support/tool-fixtures.js';
import { until } from './support/until.js';

function refused(result: TaskflowToolResult, error: string): string {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  expect(result.error).toBe(error);
  return result.message;
}

const eventWait = (topic: string, correlationId = 'INV-1') => ({ kind: 'external_event', topic, correlation_id: correlationId });

describe('tool: event waits are limited to the topics the host declared', () => {
  it('with no topics declared anywhere, an event wait is refused with a way out, and nothing changes', async () => {
    const { tf, tool } = await openToolFixture();
    const { id } = flowOf(await tool.call(startInput));
    const before = snapshotDatabase(tf.path);
    const message = refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait('payments.invoice.paid') }), 'topic_not_allowed');
    expect(message).toMatch(/event waits are not available here .*use a timer or a manual wait/);
    expect(snapshotDatabase(tf.path)).toEqual(before);
    expect(flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'timer', in: '1h' } })).status).toBe('waiting');
    expect(tool.description).toMatch(/Event waits \(external_event\) are not available here/);
  });

  it('an empty topics list also means no event waits', async () => {
    const { tool } = await openToolFixture({ topics: [] });
    const { id } = flowOf(await tool.call(startInput));
    refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait('payments.x') }), 'topic_not_allowed');
  });

  it('$…, _INBOX… and taskflow.… are refused even when the host allows every topic', async () => {
    for (const binding of [{ topics: ['>'] }, { anyTopic: true }]) {
      const { tool } = await openToolFixture(binding);
      const { id } = flowOf(await tool.call(startInput));
      for (const topic of ['$JS.API.STREAM.LIST', '$SYS.REQ.SERVER.PING', '_INBOX.abc123', 'taskflow.resume', 'taskflow.flow.x.waiting']) {
        const message = refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait(topic) }), 'topic_not_allowed');
        expect(message).toContain(`topic "${topic}"`);
        expect(message).toMatch(/allowed topics: >|any topic but \$…, _INBOX… and taskflow\.…/);
      }
      expect(flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait('orders.1.paid') })).status).toBe('waiting');
    }
  });

  it('anyTopic is described to the model, and cannot be combined with topics', async () => {
    const { tf, tool } = await openToolFixture({ anyTopic: true });
    expect(tool.description).toContain('Event waits may use any topic except $…, _INBOX… and taskflow.…');
    expect(() => createTaskflowTool(tf, { owner: OWNER, anyTopic: true, topics: ['a.>'] })).toThrow(FlowError);
  });

  describe('on a real nats-server', () => {
    let server: NatsServer;
    beforeAll(async () => {
      server = await startNatsServer();
    }, 30_000);
    afterAll(async () => {
      await server?.dispose();
    });

    it("without binding topics, the bridge's declared subjects bound event waits, and such a wait resumes from the bus", async () => {
      const tf = await openTestTaskflow({
        nats: { servers: server.url, subjects: ['invoices.>'], stream: 'SCOPE_A', durable: 'scope_a', resumeSubject: 'scope-a.resume' },
      });
      await tf.start();
      const tool = createTaskflowTool(tf, { owner: OWNER });
      expect(tool.description).toContain('Event waits may only use topics matching: invoices.>.');
      const { id } = flowOf(await tool.call(startInput));
      expect(refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait('orders.1.paid') }), 'topic_not_allowed')).toBe(
        'topic "orders.1.paid" is not allowed here; allowed topics: invoices.>',
      );
      // The host's own resume subject is the runtime's too.
      refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait('scope-a.resume') }), 'topic_not_allowed');
      expect(flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait('invoices.paid', 'INV-9') })).status).toBe('waiting');

      const nc = await connect({ servers: server.url });
      try {
        nc.publish('invoices.paid', JSON.stringify({ correlation_id: 'INV-9', payload: { amount: 9 } }));
        await nc.flush();
        await until(async () => (await tf.manager.get(id))?.status === 'running', 20_000);
        expect((await tf.manager.get(id))?.state.resume_event).toEqual({ amount: 9 });
      } finally {
        await nc.drain();
      }
    }, 60_000);

    it('a request/reply service keeps answering while a model tries to wait on its subject', async () => {
      const tf = await openTestTaskflow({ nats: { servers: server.url, subjects: ['orders.>'], stream: 'SCOPE_B', durable: 'scope_b', resumeSubject: 'scope-b.resume' } });
      await tf.start();
      const service = await connect({ servers: server.url });
      const client = await connect({ servers: server.url });
      try {
        service.subscribe('svc.time', { callback: (_error, msg) => void msg.respond('12:00') });
        await service.flush();
        const tool = createTaskflowTool(tf, { owner: OWNER });
        const { id } = flowOf(await tool.call(startInput));
        for (const topic of ['svc.time', '_INBOX.x', '$JS.API.INFO']) {
          refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait(topic) }), 'topic_not_allowed');
        }
        const reply = await client.request('svc.time', '', { timeout: 5_000 });
        expect(reply.string()).toBe('12:00');
      } finally {
        await client.drain();
        await service.drain();
      }
    }, 60_000);
  });
});

describe('tool: events are scoped per tenant or per owner through topic templates', () => {
  type Ctx = { session: string; tenant?: string };
  async function twoTenants() {
    const tf = await openTestTaskflow({ synchronous: 'normal' });
    const tool = createTaskflowTool<Ctx>(tf, {
      owner: (ctx) => ctx.session,
      topics: ['tenants.{tenant}.payments.>'],
      scope: { tenant: (ctx) => ctx.tenant },
    });
    const a: Ctx = { session: 'agent:a:session:1', tenant: 'acme' };
    const b: Ctx = { session: 'agent:b:session:1', tenant: 'globex' };
    return { tf, tool, a, b };
  }

  it("session A can neither read nor consume session B's kept event", async () => {
    const { tf, tool, a, b } = await twoTenants();
    // B's payment arrives before B waits: it is kept for B's tenant.
    const delivered = await tf.engine.deliver({ topic: 'tenants.globex.payments.paid', correlationId: 'INV-1', payload: { card: 'B-secret' } });
    expect(delivered.kept).toBe(true);

    const flowA = flowOf(await tool.call(startInput, a));
    // Naming B's tenant outright is refused; the refusal shows A's own topics only.
    const message = refused(await tool.call({ action: 'wait', flow_id: flowA.id, wait_condition: eventWait('tenants.globex.payments.paid') }, a), 'topic_not_allowed');
    expect(message).toBe('topic "tenants.globex.payments.paid" is not allowed here; allowed topics: tenants.acme.payments.>');
    // The template, written as is, is filled with A's tenant: A waits on its own key and does not resume.
    const waitingA = flowOf(await tool.call({ action: 'wait', flow_id: flowA.id, wait_condition: eventWait('tenants.{tenant}.payments.paid') }, a));
    expect(waitingA).toMatchObject({ status: 'waiting', wait: { topic: 'tenants.acme.payments.paid', correlation_id: 'INV-1' } });
    expect(waitingA.state).not.toHaveProperty('resume_event');
    // B's flow is not A's to read.
    const flowB = flowOf(await tool.call(startInput, b));
    refused(await tool.call({ action: 'status', flow_id: flowB.id }, a), 'not_found');

    // B's event is still there for B.
    const resumedB = flowOf(await tool.call({ action: 'wait', flow_id: flowB.id, wait_condition: eventWait('tenants.{tenant}.payments.paid') }, b));
    expect(resumedB).toMatchObject({ status: 'running', state: { resume_event: { card: 'B-secret' } } });
    expect(flowOf(await tool.call({ action: 'status', flow_id: flowA.id }, a)).status).toBe('waiting');
  });

  it("an event on A's own scoped key resumes A, and A only", async () => {
    const { tf, tool, a, b } = await twoTenants();
    const flowA = flowOf(await tool.call(startInput, a));
    const flowB = flowOf(await tool.call(startInput, b));
    await tool.call({ action: 'wait', flow_id: flowA.id, wait_condition: eventWait('tenants.acme.payments.paid') }, a);
    await tool.call({ action: 'wait', flow_id: flowB.id, wait_condition: eventWait('tenants.{tenant}.payments.paid') }, b);
    const delivered = await tf.engine.deliver({ topic: 'tenants.acme.payments.paid', correlationId: 'INV-1', payload: 'A' });
    expect(delivered.resumed).toEqual([flowA.id]);
    expect((await tf.manager.get(flowB.id))?.status).toBe('waiting');
  });

  it('{owner} scopes topics per session', async () => {
    const tf = await openTestTaskflow({ synchronous: 'normal' });
    const tool = createTaskflowTool<Ctx>(tf, { owner: (ctx) => ctx.session, topics: ['inbox.{owner}.>'] });
    expect(tool.description).toContain('Write {owner} as it stands in the topic: the tool fills in your own value.');
    const mine = flowOf(await tool.call(startInput, { session: 'agent-a' }));
    const waiting = flowOf(await tool.call({ action: 'wait', flow_id: mine.id, wait_condition: eventWait('inbox.{owner}.reply') }, { session: 'agent-a' }));
    expect(waiting.wait).toMatchObject({ topic: 'inbox.agent-a.reply' });
    const other = flowOf(await tool.call(startInput, { session: 'agent-a' }));
    refused(await tool.call({ action: 'wait', flow_id: other.id, wait_condition: eventWait('inbox.agent-b.reply') }, { session: 'agent-a' }), 'topic_not_allowed');
  });

  it('a call whose scope value is missing or not one token cannot wait on events, but can wait on a timer', async () => {
    const { tool } = await twoTenants();
    for (const ctx of [{ session: 's1' }, { session: 's1', tenant: 'a.b' }, { session: 's1', tenant: '*' }]) {
      const { id } = flowOf(await tool.call(startInput, ctx));
      expect(refused(await tool.call({ action: 'wait', flow_id: id, wait_condition: eventWait('tenants.{tenant}.payments.paid') }, ctx), 'topic_not_allowed')).toMatch(
        /the host's value for \{tenant\}/,
      );
      expect(flowOf(await tool.call({ action: 'wait', flow_id: id, wait_condition: { kind: 'timer', in: '1h' } }, ctx)).status).toBe('waiting');
    }
  });

  it('a malformed template or scope is refused when the tool is created', async () => {
    const { tf } = await openToolFixture();
    const invalid = (make: () => unknown, pattern: RegExp) => {
      try {
        make();
      } catch (error) {
        expect(FlowError.isInstance(error) && error.code).toBe('invalid_input');
        expect((error as Error).message).toMatch(pattern);
        return;
      }
      throw new Error('expected a FlowError');
    };
    invalid(() => createTaskflowTool(tf, { owner: OWNER, topics: ['tenants.{tenant}.>'] }), /uses \{tenant\}, which is neither \{owner\} nor a name in binding.scope/);
    invalid(() => createTaskflowTool(tf, { owner: OWNER, topics: ['t-{tenant}.>'], scope: { tenant: 'acme' } }), /must be a whole token/);
    invalid(() => createTaskflowTool(tf, { owner: OWNER, topics: ['a.>'], scope: { tenant: 'a.b' } }), /binding.scope.tenant "a.b" is not one subject token/);
    invalid(() => createTaskflowTool(tf, { owner: OWNER, topics: ['a.>'], scope: { owner: 'x' } }), /"owner" is built in/);
  });
});
