import { resolve } from 'node:path';

/** Where the demo keeps its database, and its invoices. */
export const DEMO_DB = resolve(process.env.DEMO_DB ?? 'data/payment-wait-demo.db');
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const SESSION = 'agent:billing:session:demo';
/** The JetStream stream the demo's bridge uses; the demo starts it afresh each run. */
export const DEMO_STREAM = 'TASKFLOW_DEMO';

export const INVOICES = [
  { invoice: 'INV-42', amount: 120, customer: 'Ana', deadline: '60s' },
  { invoice: 'INV-77', amount: 80, customer: 'Ben', deadline: '6s' },
] as const;

export function intakePrompt(i: (typeof INVOICES)[number]): string {
  return (
    `Invoice ${i.invoice} ($${i.amount}) was sent to ${i.customer}. When it is paid, ship the order; ` +
    `if it is not paid within ${i.deadline}, send a reminder.`
  );
}
