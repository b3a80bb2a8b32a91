import type { Command } from '../command.js';
import { cancelCommand } from './cancel.js';
import { deliverCommand } from './deliver.js';
import { doctorCommand } from './doctor.js';
import { eventsCommand } from './events.js';
import { helpCommand } from './help.js';
import { inboxCommand } from './inbox.js';
import { listCommand } from './list.js';
import { pruneCommand } from './prune.js';
import { requeueCommand } from './requeue.js';
import { resumeCommand } from './resume.js';
import { showCommand } from './show.js';
import { signalCommand } from './signal.js';
import { uiCommand } from './ui.js';

/** Every command, in the order `taskflow help` lists them. */
export const COMMANDS: readonly Command[] = [
  listCommand,
  showCommand,
  eventsCommand,
  cancelCommand,
  resumeCommand,
  signalCommand,
  deliverCommand,
  requeueCommand,
  inboxCommand,
  doctorCommand,
  pruneCommand,
  uiCommand,
  helpCommand,
];
