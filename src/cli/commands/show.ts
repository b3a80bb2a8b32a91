import { writeJson, type DatabaseCommand } from '../command.js';
import { eventsTable, flowFields, notificationsTable, stepsTable } from '../format.js';
import { requireFlow } from './flow-id.js';

/** `taskflow show <id>`: JSON shape `{ flow: Flow, steps: FlowStep[], events: FlowEvent[], notifications: ResumeNotification[] }`. */
export const showCommand: DatabaseCommand = {
  name: 'show',
  summary: 'show a flow: its fields, state, steps, audit timeline and pending resumes',
  usage: 'show <id>',
  details: [
    'Long payloads are cut in the timeline; `taskflow events <id>` prints them whole.',
    'Resume notifications are the resumes not yet handled by the application\'s onResume:',
    'queued, delivering, retrying (with the last error) or dead (parked after its last',
    'attempt; `taskflow requeue <id>` puts it back).',
    'JSON: { "flow": Flow, "steps": [FlowStep, ...], "events": [FlowEvent, ...], "notifications": [ResumeNotification, ...] }',
  ].join('\n'),
  positionals: ['id'],
  options: {},
  usesDatabase: true,
  readsOnly: true,
  async run({ tf, args, json, stdout }) {
    const flow = await requireFlow(tf, args[0]!);
    const [steps, events, notifications] = await Promise.all([
      tf.manager.listSteps(flow.id),
      tf.manager.listEvents(flow.id),
      tf.store.listNotifications([flow.id]),
    ]);
    if (json) return writeJson(stdout, { flow, steps, events, notifications });
    stdout.write(flowFields(flow));
    stdout.write(`\nSteps\n${steps.length === 0 ? 'no steps recorded\n' : stepsTable(steps)}`);
    stdout.write(`\nTimeline\n${eventsTable(events, 72)}`);
    stdout.write(`\nResume notifications\n${notifications.length === 0 ? 'none pending\n' : notificationsTable(notifications)}`);
  },
};
