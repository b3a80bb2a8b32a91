import { FLOW_STATUSES, type FlowStatus, type JsonObject } from '../runtime/flow.js';
import type { TaskflowAction } from './actions.js';
import { optionalChoice, optionalInteger, optionalObject, optionalText, requiredText, type Fields } from './fields.js';
import { LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT } from './input-schema.js';
import { ToolRefusal } from './refusal.js';

/** A call's fields, checked for its action (the wait condition is checked later, against now). */
export type Command =
  | { action: 'start'; controllerId: string; goal: string; currentStep?: string; state?: JsonObject; idempotencyKey?: string; waitCondition?: unknown }
  | { action: 'status'; flowId: string }
  | { action: 'advance'; flowId: string; patch?: JsonObject; currentStep?: string }
  | { action: 'wait'; flowId: string; waitCondition: unknown }
  | { action: 'finish'; flowId: string; finalState?: JsonObject }
  | { action: 'fail'; flowId: string; reason: string }
  | { action: 'cancel'; flowId: string }
  | { action: 'list_mine'; status?: FlowStatus; limit: number; offset: number };

const flowId = (fields: Fields, action: string) => requiredText(fields, 'flow_id', action, 'the id returned by start or list_mine');

/** Checks the fields `action` needs; throws {@link ToolRefusal} naming the missing or wrong field. */
export function parseCommand(action: TaskflowAction, fields: Fields): Command {
  switch (action) {
    case 'start': {
      const command: Command = {
        action,
        controllerId: requiredText(fields, 'controller_id', 'start', '"kate/shipping"'),
        goal: requiredText(fields, 'goal', 'start', '"ship order 42 once invoice INV-42 is paid"'),
      };
      const currentStep = optionalText(fields, 'current_step');
      const state = optionalObject(fields, 'state', '{"order": 42}');
      const idempotencyKey = optionalText(fields, 'idempotency_key');
      if (currentStep !== undefined) command.currentStep = currentStep;
      if (state !== undefined) command.state = state;
      if (idempotencyKey !== undefined) command.idempotencyKey = idempotencyKey;
      if (fields.wait_condition !== undefined && fields.wait_condition !== null) command.waitCondition = fields.wait_condition;
      return command;
    }
    case 'advance': {
      const command: Command = { action, flowId: flowId(fields, action) };
      const patch = optionalObject(fields, 'patch', '{"invoice": "INV-42"}');
      const currentStep = optionalText(fields, 'current_step');
      if (patch === undefined && currentStep === undefined) {
        throw new ToolRefusal('invalid_input', 'advance needs patch (an object merged into the state) or current_step (a new step label), or both');
      }
      if (patch !== undefined) command.patch = patch;
      if (currentStep !== undefined) command.currentStep = currentStep;
      return command;
    }
    case 'wait':
      return { action, flowId: flowId(fields, action), waitCondition: fields.wait_condition };
    case 'finish': {
      const command: Command = { action, flowId: flowId(fields, action) };
      const finalState = optionalObject(fields, 'final_state', '{"shipped": true}');
      if (finalState !== undefined) command.finalState = finalState;
      return command;
    }
    case 'fail':
      return { action, flowId: flowId(fields, action), reason: requiredText(fields, 'reason', 'fail', '"the invoice was cancelled"') };
    case 'status':
    case 'cancel':
      return { action, flowId: flowId(fields, action) };
    case 'list_mine': {
      const command: Command = {
        action,
        limit: optionalInteger(fields, 'limit', 1, LIST_MAX_LIMIT) ?? LIST_DEFAULT_LIMIT,
        offset: optionalInteger(fields, 'offset', 0, Number.MAX_SAFE_INTEGER) ?? 0,
      };
      const status = optionalChoice(fields, 'status', FLOW_STATUSES);
      if (status !== undefined) command.status = status;
      return command;
    }
  }
}
