import { writeJson, type DatabaseCommand } from '../command.js';
import { eventsTable, flowFields, stepsTable } from '../format.js';
import { requireFlow } from './flow-id.js';

/** `taskflow show <id>`: JSON shape `{ flow: Flow, steps: FlowStep[], events: FlowEvent[] }`. */
export const showCommand: DatabaseCommand = {
  name: 'show',
  summary: 'show a flow: its fields, state, steps and audit timeline',
  usage: 'show <id>',
  details: ['Long payloads are cut in the timeline; `taskflow events <id>` prints them whole.', 'JSON: { "flow": Flow, "steps": [FlowStep, ...], "events": [FlowEvent, ...] }'].join('\n'),
  positionals: ['id'],
  options: {},
  usesDatabase: true,
  async run({ tf, args, json, stdout }) {
    const flow = await requireFlow(tf, args[0]!);
    const [steps, events] = await Promise.all([tf.manager.listSteps(flow.id), tf.manager.listEvents(flow.id)]);
    if (json) return writeJson(stdout, { flow, steps, events });
    stdout.write(flowFields(flow));
    stdout.write(`\nSteps\n${steps.length === 0 ? 'no steps recorded\n' : stepsTable(steps)}`);
    stdout.write(`\nTimeline\n${eventsTable(events, 72)}`);
  },
};
