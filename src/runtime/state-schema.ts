import { FlowError } from './errors.js';

/**
 * A schema a controller's state must fit: anything with zod's `safeParse`
 * (zod 3 or 4, e.g. `z.object({ invoice: z.string() })`). Spelled out so the
 * runtime's declarations need no particular zod version.
 */
export interface StateSchema {
  safeParse(value: unknown): { success: true } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

/** Schemas by controller id: the state of a flow of that controller must fit after every write through the manager. */
export type StateSchemas = Readonly<Record<string, StateSchema>>;

/** Refuses `state` with `invalid_input` when the flow's controller has a schema it does not fit. */
export function checkStateSchema(schemas: StateSchemas | undefined, controllerId: string, state: unknown): void {
  const schema = schemas && Object.hasOwn(schemas, controllerId) ? schemas[controllerId] : undefined;
  if (!schema) return;
  const parsed = schema.safeParse(state);
  if (parsed.success) return;
  const issues = parsed.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(state)'}: ${issue.message}`)
    .join('; ');
  throw new FlowError('invalid_input', `state does not fit the schema of controller ${controllerId}: ${issues}`);
}
