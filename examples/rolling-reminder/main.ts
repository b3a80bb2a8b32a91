/**
 * The rolling-reminder example: remind a customer every 3 days until the invoice
 * is paid or 5 reminders went out, then escalate to a person. One recurring wait
 * drives it; the handler parks for the next occurrence with one idempotent call.
 *
 * Simulated time (a ManualClock) makes its 18 days pass in well under a second.
 * Run with `npm run example:reminder`.
 */
import { ManualClock, occurrenceDone, openTaskflow, silentLogger, type Flow, type Taskflow, type Wake } from 'nexo-taskflow';

const DAY = 86_400_000;
const T0 = Date.parse('2026-03-02T09:00:00Z');
const MAX_REMINDERS = 5;

interface InvoiceState {
  invoice: string;
  customer: string;
  reminders: number;
  paid?: boolean;
}

const clock = new ManualClock(T0);
const day = () => `day ${String(Math.round((clock.now() - T0) / DAY)).padStart(2)}`;
const say = (text: string) => process.stdout.write(`[${day()}] ${text}\n`);

/** The outbox: reminders "sent" (a real host would email). A redelivered occurrence must not send twice. */
const sent: string[] = [];
/** A mail server that fails once, just after sending: the runtime redelivers that occurrence. */
let failAfterSending = 'INV-43#2';

let tf!: Taskflow;

/** The whole policy: what to do when an invoice flow resumes. */
async function onResume(flow: Flow, wake: Wake): Promise<void> {
  const current = (await tf.manager.get<InvoiceState & Record<string, unknown>>(flow.id))!;
  const state = current.state;
  if (wake.reason === 'manual' && state.paid) {
    await tf.manager.finish(flow.id, { outcome: 'paid' });
    say(`${state.invoice}: paid after ${state.reminders} reminder(s); flow finished`);
    return;
  }
  const occurrence = wake.occurrence;
  if (!occurrence) return;
  if (occurrenceDone(current, occurrence.number)) {
    say(`${state.invoice}: occurrence ${occurrence.number} delivered again; already handled, nothing sent`);
    return;
  }
  if (occurrence.number > MAX_REMINDERS) {
    // Three days after the last reminder, still unpaid: a person takes over.
    await tf.manager.finish(flow.id, { outcome: 'escalated' });
    say(`${state.invoice}: ${MAX_REMINDERS} reminders unanswered; ESCALATED to accounts receivable`);
    return;
  }
  const reminder = `${state.invoice}#${occurrence.number}`;
  sent.push(reminder);
  say(`${state.invoice}: reminder ${occurrence.number} of ${MAX_REMINDERS} sent to ${state.customer} (scheduled ${occurrence.scheduledAt.toISOString()})`);
  // Record the reminder and park for the next occurrence in one write; repeating it changes nothing.
  await tf.manager.waitNext(flow.id, occurrence.number, { reminders: occurrence.number });
  if (reminder === failAfterSending) {
    failAfterSending = '';
    throw new Error('mail server hung up after sending');
  }
}

tf = await openTaskflow({ database: ':memory:', clock, logger: silentLogger, onResume });
try {
  const invoices: Array<InvoiceState & { paysOnDay?: number }> = [
    { invoice: 'INV-42', customer: 'acme', reminders: 0, paysOnDay: 7 },
    { invoice: 'INV-43', customer: 'globex', reminders: 0 },
  ];
  const ids = new Map<string, string>();
  for (const { paysOnDay: _paysOnDay, ...state } of invoices) {
    const flow = await tf.manager.createManaged({ controllerId: 'billing/rolling-reminder', goal: `get ${state.invoice} paid`, ownerSessionKey: 'agent:billing:session:1', state: { ...state } });
    await tf.manager.startRunning(flow.id);
    // Every 3 days, anchored to the first reminder; the 6th occurrence is the escalation.
    await tf.manager.setWaiting(flow.id, { kind: 'recurring', every: '3d', count: MAX_REMINDERS + 1 });
    ids.set(state.invoice, flow.id);
    say(`${state.invoice}: invoice sent to ${state.customer}; reminders every 3 days`);
  }

  for (let today = 1; today <= 20; today++) {
    clock.set(T0 + today * DAY);
    for (const { invoice, paysOnDay } of invoices) {
      if (paysOnDay !== today) continue;
      say(`${invoice}: payment received`);
      await tf.manager.resume(ids.get(invoice)!, { paid: true });
    }
    await tf.engine.tick();
    // Deliveries: due resumes, and the redelivery of a handler that failed.
    await tf.engine.deliverNotifications();
  }

  say('summary:');
  for (const [invoice, id] of ids) {
    const flow = (await tf.manager.get(id))!;
    say(`  ${invoice}: ${flow.status} (${String(flow.state.outcome)}), reminders sent: ${sent.filter((r) => r.startsWith(`${invoice}#`)).length}`);
  }
} finally {
  await tf.close();
}
