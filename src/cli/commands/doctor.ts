import { parseDuration } from '../../runtime/duration.js';
import { FlowError } from '../../runtime/errors.js';
import type { DiagnoseOptions } from '../../runtime/doctor/diagnose.js';
import { parseIntegerOption, stringOption, type OptionValues } from '../args.js';
import { writeJson, type DatabaseCommand } from '../command.js';
import { EXIT, usageError } from '../errors.js';
import { plural } from '../format.js';

function durationOption(values: OptionValues, name: string): string | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  try {
    parseDuration(text, `--${name}`);
  } catch (error) {
    throw usageError(FlowError.isInstance(error) ? error.message : String(error));
  }
  return text;
}

/**
 * `taskflow doctor [--engine-silence <d>] [--manual-wait-age <d>] [--limit <n>]`:
 * `tf.diagnose()` from the command line. Exits 0 when it finds nothing, 1 when it
 * finds trouble (so a cron job or a health check can alert), 3 when the database
 * fails. JSON shape: the {@link Diagnosis} (`{ at, ok, findings, nearMisses, engines, truncated }`).
 */
export const doctorCommand: DatabaseCommand = {
  name: 'doctor',
  summary: 'list waits in trouble (that may never wake), each with the reason and the fix',
  usage: 'doctor [--engine-silence <duration>] [--manual-wait-age <duration>] [--limit <n>]',
  details: [
    'Checks, with bounded indexed reads only:',
    '  no_engine          timers or timeouts are due but no engine has ticked for --engine-silence',
    '  uncovered_topic    flows wait on a topic no running NATS bridge covers (when bridges run here)',
    '  near_miss          an event is kept for a key that nearly matches a waiting key',
    '                     (case, whitespace, or a typo of edit distance <= 2)',
    '  stale_manual_wait  a signal wait with no timeout older than --manual-wait-age',
    '  dead_notification  resume notifications parked as dead after failing in onResume',
    'Exit status: 0 nothing found; 1 trouble found; 2 bad command line; 3 database failure.',
    'Options:',
    '  --engine-silence <duration>    an engine silent this long counts as gone (default 1m)',
    '  --manual-wait-age <duration>   report signal waits with no timeout older than this (default 7d)',
    '  --limit <n>                    flows per finding and findings per check (default 100)',
    'JSON: { "at", "ok", "findings": [{ "kind", "flowIds", "reason", "fix", "topic"?, "correlationId"?, "kept"? }],',
    '        "nearMisses": [...], "engines": [{ "id", "host", "startedAt", "beatAt", "bridge" }], "truncated" }',
  ].join('\n'),
  positionals: [],
  options: { 'engine-silence': { type: 'string' }, 'manual-wait-age': { type: 'string' }, limit: { type: 'string' } },
  usesDatabase: true,
  readsOnly: true,
  async run({ tf, values, json, stdout }) {
    const options: DiagnoseOptions = {};
    const silence = durationOption(values, 'engine-silence');
    const age = durationOption(values, 'manual-wait-age');
    const limit = stringOption(values, 'limit');
    if (silence !== undefined) options.engineSilence = silence;
    if (age !== undefined) options.manualWaitAge = age;
    if (limit !== undefined) options.limit = parseIntegerOption(limit, 'limit', 1, 10_000);
    const diagnosis = await tf.diagnose(options);
    if (json) {
      writeJson(stdout, diagnosis);
    } else {
      const engines = diagnosis.engines.length === 0 ? 'no engine running' : `${plural(diagnosis.engines.length, 'engine')} running (${diagnosis.engines.map((e) => e.host).join(', ')})`;
      if (diagnosis.ok) stdout.write(`no waits in trouble; ${engines}\n`);
      else {
        for (const finding of diagnosis.findings) {
          const flows = finding.flowIds.length === 1 ? `flow ${finding.flowIds[0]}` : `${finding.flowIds.length} flows: ${finding.flowIds.join(', ')}`;
          stdout.write(`${finding.kind}: ${finding.reason}\n  ${flows}\n  fix: ${finding.fix}\n`);
        }
        stdout.write(`${plural(diagnosis.findings.length, 'finding')}; ${engines}\n`);
      }
      if (diagnosis.truncated) stdout.write('some reads stopped at their limit: there may be more than shown\n');
    }
    return diagnosis.ok ? EXIT.ok : EXIT.refused;
  },
};
