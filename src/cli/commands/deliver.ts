import type { DeliveryResult, EventDelivery } from '../../runtime/engine/engine.js';
import type { StartOrDeliverInput } from '../../runtime/start-or-deliver-input.js';
import { parseDuration } from '../../runtime/duration.js';
import { FlowError } from '../../runtime/errors.js';
import { parseJsonOption, stringOption, type OptionValues } from '../args.js';
import { writeJson, type DatabaseCommand, type Output } from '../command.js';
import { usageError } from '../errors.js';
import { plural } from '../format.js';

/** How long an unmatched event stays in the inbox unless `--keep-for` says otherwise. */
const DEFAULT_KEEP_FOR = '7d';

function keepFor(values: OptionValues): number {
  const text = stringOption(values, 'keep-for') ?? DEFAULT_KEEP_FOR;
  try {
    return parseDuration(text, '--keep-for');
  } catch (error) {
    throw usageError(FlowError.isInstance(error) ? error.message : String(error));
  }
}

/**
 * `taskflow deliver <topic> <correlation-id> [--payload json] [--event-id id]`:
 * `WaitEngine.deliver` from the command line. JSON shape:
 * `{ topic, correlationId, resumed: string[], kept, duplicate }`.
 */
export const deliverCommand: DatabaseCommand = {
  name: 'deliver',
  summary: 'deliver an external event, as if it came over NATS (--start: start its flow if none)',
  usage: 'deliver <topic> <correlation-id> [--payload <json>] [--event-id <id>] [--keep-for <duration>] [--start <json>]',
  details: [
    'Resumes every flow waiting on (topic, correlation id), with state.resume_event set',
    'to the payload. When none waits, the event is kept in the inbox so that a later wait',
    'on the same key resumes at once. A repeated --event-id is ignored.',
    'Options:',
    '  --payload <json>        any JSON value',
    '  --event-id <id>         a stable id that makes the delivery idempotent',
    `  --keep-for <duration>   inbox retention of an unmatched event (default ${DEFAULT_KEEP_FOR})`,
    '  --start <json>          start or deliver, in one commit: { "owner", "idempotencyKey", "flow":',
    '                          { "controllerId", "goal", "state"? ... }, "wait"? }. Starts the owner\'s flow',
    '                          of that key if there is none (by default waiting on this event\'s key, so',
    '                          it resumes at once with the event), and delivers the event either way',
    'JSON: { "topic", "correlationId", "resumed": [id, ...], "kept": bool, "duplicate": bool, "dropped"?: "key_full" | "inbox_full" }',
    '      with --start also "started": bool and "flow": { "id", "status" }',
  ].join('\n'),
  positionals: ['topic', 'correlation-id'],
  options: { payload: { type: 'string' }, 'event-id': { type: 'string' }, 'keep-for': { type: 'string' }, start: { type: 'string' } },
  usesDatabase: true,
  taskflowOptions: (values) => ({ eventRetention: keepFor(values) }),
  async run({ tf, args, values, json, stdout }) {
    const [topic, correlationId] = args as [string, string];
    const payloadText = stringOption(values, 'payload');
    const eventId = stringOption(values, 'event-id');
    const event: EventDelivery = { topic, correlationId };
    if (payloadText !== undefined) event.payload = parseJsonOption(payloadText, 'payload');
    if (eventId !== undefined) event.eventId = eventId;
    const key = `${topic}/${correlationId}`;
    const startText = stringOption(values, 'start');
    if (startText !== undefined) {
      const start = parseJsonOption(startText, 'start') as Omit<StartOrDeliverInput, 'event'>;
      if (typeof start !== 'object' || start === null || Array.isArray(start)) throw usageError('--start must be a JSON object { "owner", "idempotencyKey", "flow", "wait"? }');
      const { flow, started, delivery } = await tf.startOrDeliver({ ...start, event });
      if (json) return writeJson(stdout, { topic, correlationId, ...delivery, started, flow: { id: flow.id, status: flow.status } });
      stdout.write(`${started ? 'started' : 'found'} flow ${flow.id} (${flow.status})\n`);
      return void writeOutcome(key, eventId, delivery, stdout);
    }
    const result = await tf.engine.deliver(event);
    if (json) return writeJson(stdout, { topic, correlationId, ...result });
    writeOutcome(key, eventId, result, stdout);
  },
};

function writeOutcome(key: string, eventId: string | undefined, result: DeliveryResult, stdout: Output): void {
    if (result.duplicate) stdout.write(`event ${key}: id ${eventId ?? ''} was delivered before; nothing happened\n`);
    else if (result.dropped) stdout.write(`event ${key}: no flow waits on it and the inbox is full (${result.dropped}); dropped\n`);
    else if (result.kept) stdout.write(`event ${key}: no flow waits on it; kept in the inbox for a later wait\n`);
    else stdout.write(`event ${key} resumed ${plural(result.resumed.length, 'flow')}: ${result.resumed.join(', ')}\n`);
}
