import { z } from 'zod';
import { FLOW_STATUSES } from '../runtime/flow.js';
import { TASKFLOW_ACTIONS } from './actions.js';
import type { TaskflowInputJsonSchema } from './types.js';

/** The largest page `list_mine` returns. */
export const LIST_MAX_LIMIT = 100;
/** The page size of `list_mine` when the model gives none. */
export const LIST_DEFAULT_LIMIT = 20;

const text = (description: string) => ({ type: 'string', description });
const object = (description: string) => ({ type: 'object', description });

/**
 * The model-facing JSON Schema: ONE flat object (top-level `type: "object"`,
 * which OpenAI and Anthropic require) with an `action` enum and optional fields.
 * Which fields an action needs is checked inside the tool, whose refusals name
 * the missing or wrong field; a discriminated union would make the SDKs emit a
 * top-level `oneOf` instead.
 */
export const taskflowInputJsonSchema: TaskflowInputJsonSchema = {
  type: 'object',
  properties: {
    action: {
      type: 'string',
      enum: [...TASKFLOW_ACTIONS],
      description: 'What to do: start, status, advance, wait, finish, fail, cancel or list_mine.',
    },
    flow_id: text('The flow id returned by start or list_mine. Required by status, advance, wait, finish, fail and cancel.'),
    controller_id: text('start: who drives the flow, such as "kate/inbox-triage".'),
    goal: text('start: what the flow is for, in one sentence.'),
    current_step: text('start or advance: a short label for where the flow is, such as "await_payment". Default "init".'),
    state: object('start: the initial JSON state of the flow (an object). Default {}.'),
    idempotency_key: text('start: a key unique to this piece of work; starting again with the same key returns the same flow.'),
    patch: object('advance: keys to merge into the flow state (top-level keys overwrite).'),
    wait_condition: {
      type: 'object',
      description:
        'wait (or start, to start and park in one call): what to wait for. Timer: {"kind":"timer","in":"90m"} or {"kind":"timer","at":"2026-12-01T09:00:00Z"}. ' +
        'Event: {"kind":"external_event","topic":"payments.invoice.paid","correlation_id":"INV-42","timeout_in":"3d"}. ' +
        'Manual: {"kind":"manual","signal":"approved","timeout_in":"2d"}. ' +
        'First of several: {"kind":"any","of":[{"kind":"external_event","topic":"payments.received","correlation_id":"INV-42"},{"kind":"manual","signal":"cancel_order"},{"kind":"timer","in":"3d"}]}. ' +
        'Recurring: {"kind":"recurring","every":"3d","count":5} or {"kind":"recurring","cron":"0 9 * * MON-FRI","time_zone":"Europe/Paris"}; ' +
        'after handling occurrence N: {"kind":"next_occurrence","after":N}.',
      properties: {
        kind: { type: 'string', enum: ['timer', 'external_event', 'manual', 'any', 'recurring', 'next_occurrence'], description: 'The kind of wait; any = the first of the conditions in of.' },
        of: {
          type: 'array',
          description: 'any: 1 to 16 conditions; the first to happen resumes the flow and last_wake.condition says which. No timeouts inside: add a timer condition as the deadline.',
          items: {
            type: 'object',
            properties: {
              kind: { type: 'string', enum: ['timer', 'external_event', 'manual'], description: 'The kind of condition.' },
              at: text('timer: when, RFC 3339 with a time zone, in the future.'),
              in: text('timer: how long from now, such as "3d".'),
              topic: text('external_event: the topic the event arrives on.'),
              correlation_id: text('external_event: which event on the topic.'),
              signal: text('manual: the name of the signal (required in an any wait).'),
            },
            required: ['kind'],
            additionalProperties: false,
          },
        },
        at: text('timer: when to wake, RFC 3339 with a time zone, in the future.'),
        in: text('timer: how long from now, such as "90s", "90m", "4h", "3d". Give either at or in.'),
        topic: text('external_event: the topic the event arrives on, such as "payments.invoice.paid".'),
        correlation_id: text('external_event: which event on the topic, such as an invoice number.'),
        signal: text('manual: the name of the signal that resumes the flow (optional).'),
        timeout_at: text('external_event or manual (optional): give up waiting at this RFC 3339 time.'),
        timeout_in: text('external_event or manual (optional): give up waiting after this long, such as "3d".'),
        every: text('recurring: the interval between occurrences, such as "3d"; counted from the first occurrence, so it never drifts.'),
        cron: text('recurring: a cron expression instead of every, such as "0 9 * * MON-FRI".'),
        time_zone: text('recurring with cron (optional): the IANA zone the cron is read in, such as "Europe/Paris". Default UTC.'),
        start_at: text('recurring (optional): the first occurrence, RFC 3339. Default: one interval from now, or the next cron time.'),
        until: text('recurring (optional): no occurrence after this RFC 3339 time.'),
        count: { type: 'integer', minimum: 1, description: 'recurring (optional): at most this many occurrences.' },
        catch_up: {
          type: 'string',
          enum: ['latest', 'each'],
          description: 'recurring (optional): occurrences missed while nothing ran: "latest" (default) resumes once and says how many were missed; "each" resumes for every one.',
        },
        after: { type: 'integer', minimum: 0, description: 'next_occurrence: the number of the occurrence just handled (last_wake.occurrence.number).' },
      },
      required: ['kind'],
      additionalProperties: false,
    },
    final_state: object('finish: keys to merge into the state as the flow finishes.'),
    reason: text('fail: why the flow failed.'),
    status: {
      type: 'string',
      enum: [...FLOW_STATUSES],
      description: 'list_mine (optional): only flows in this status.',
    },
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: LIST_MAX_LIMIT,
      description: `list_mine (optional): page size, default ${LIST_DEFAULT_LIMIT}, at most ${LIST_MAX_LIMIT}.`,
    },
    offset: { type: 'integer', minimum: 0, description: 'list_mine (optional): how many flows to skip, default 0.' },
  },
  required: ['action'],
  additionalProperties: false,
};

/**
 * The same schema as a zod object, for SDKs that want zod. Its JSON Schema
 * (`z.toJSONSchema`) is {@link taskflowInputJsonSchema}, yet parsing accepts any
 * object: the tool validates each action itself, so a model always gets the
 * tool's own refusal (which names the field to fix) instead of an SDK parse error.
 */
export const taskflowInputSchema = z
  .object(
    Object.fromEntries(
      Object.entries(taskflowInputJsonSchema.properties).map(([field, json]) => [field, z.unknown().optional().meta(json)]),
    ),
  )
  .loose()
  .meta({ required: ['action'], additionalProperties: false });
