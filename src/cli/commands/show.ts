import { writeJson, type DatabaseCommand } from '../command.js';
import { eventsTable, flowFields, notificationsTable, stepMoves, stepMovesTable, stepsTable } from '../format.js';
import { requireFlow } from './flow-id.js';

/**
 * `taskflow show <id>`: JSON shape `{ flow: Flow, stepMoves: StepMove[], steps: FlowStep[],
 * events: FlowEvent[], notifications: ResumeNotification[] }`.
 */
export const showCommand: DatabaseCommand = {
  name: 'show',
  summary: 'show a flow: its fields, state, step moves, observed steps, audit timeline and pending resumes',
  usage: 'show <id>',
  details: [
    'Two kinds of steps:',
    '  step moves      the flow\'s own step label (current_step) as its controller moved it',
    '                  (the tool\'s advance, manager.updateState with a next step), from the audit log;',
    '  observed steps  work done elsewhere that a mirrored flow recorded, one row per run id',
    '                  (manager.recordStepObservation); managed flows usually have none.',
    'A flow that waits on a recurring schedule shows it (rule, end, catch-up, the occurrence last resumed).',
    'The timeline is the audit log, numbered per flow from 1 (row n took the flow to revision n - 1).',
    'Long payloads are cut in the timeline; `taskflow events <id>` prints them whole.',
    'Resume notifications are the resumes not yet handled by the application\'s onResume:',
    'queued, delivering, retrying (with the last error) or dead (parked after its last',
    'attempt; `taskflow requeue <id>` puts it back).',
    'JSON: { "flow": Flow, "stepMoves": [{ "row", "eventId", "at", "step" }, ...], "steps": [FlowStep, ...],',
    '        "events": [FlowEvent, ...], "notifications": [ResumeNotification, ...] }',
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
    const moves = stepMoves(events);
    if (json) return writeJson(stdout, { flow, stepMoves: moves, steps, events, notifications });
    stdout.write(flowFields(flow));
    stdout.write('\nStep moves (current_step, as the controller moved it)\n');
    stdout.write(moves.length === 0 ? `none: at step ${flow.currentStep} since it was created\n` : stepMovesTable(moves));
    stdout.write('\nObserved steps (work recorded by a mirrored flow, one row per run)\n');
    stdout.write(steps.length === 0 ? 'none recorded\n' : stepsTable(steps));
    stdout.write(`\nTimeline\n${eventsTable(events, 72)}`);
    stdout.write(`\nResume notifications\n${notifications.length === 0 ? 'none pending\n' : notificationsTable(notifications)}`);
  },
};
