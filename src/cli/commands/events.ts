import { writeJson, type DatabaseCommand } from '../command.js';
import { eventsTable } from '../format.js';
import { requireFlow } from './flow-id.js';

/** `taskflow events <id>`: JSON shape `{ flowId, count, events: FlowEvent[] }`. */
export const eventsCommand: DatabaseCommand = {
  name: 'events',
  summary: "print a flow's audit events, oldest first, payloads whole",
  usage: 'events <id>',
  details: 'JSON: { "flowId": id, "count": n, "events": [FlowEvent, ...] }',
  positionals: ['id'],
  options: {},
  usesDatabase: true,
  readsOnly: true,
  async run({ tf, args, json, stdout }) {
    const flow = await requireFlow(tf, args[0]!);
    const events = await tf.manager.listEvents(flow.id);
    if (json) return writeJson(stdout, { flowId: flow.id, count: events.length, events });
    stdout.write(eventsTable(events));
  },
};
