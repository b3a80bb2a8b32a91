import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTaskflowTool, TASKFLOW_ACTIONS, taskflowInputJsonSchema, taskflowInputSchema } from '../src/index.js';
import { openToolFixture, OWNER } from './support/tool-fixtures.js';

describe('taskflow tool input schema', () => {
  it('is one flat object with the eight actions, not a union', () => {
    expect(taskflowInputJsonSchema).toMatchObject({ type: 'object', required: ['action'], additionalProperties: false });
    expect(taskflowInputJsonSchema.properties.action).toMatchObject({ type: 'string', enum: [...TASKFLOW_ACTIONS] });
    for (const keyword of ['oneOf', 'anyOf', 'allOf']) expect(JSON.stringify(taskflowInputJsonSchema)).not.toContain(`"${keyword}"`);
  });

  it('the zod schema emits the same JSON Schema', () => {
    const json = z.toJSONSchema(taskflowInputSchema) as { type: string; properties: unknown; required: string[] };
    expect(json.type).toBe('object');
    expect(json.properties).toEqual(taskflowInputJsonSchema.properties);
    expect(json.required).toEqual(['action']);
  });

  it('the zod schema accepts any object, so the tool (not the SDK) explains what is wrong', () => {
    expect(taskflowInputSchema.safeParse({ action: 'launch', goal: 7, extra: true }).success).toBe(true);
    expect(taskflowInputSchema.safeParse({}).success).toBe(true);
  });

  it('the tool carries the schema and a description with an example of each allowed action', async () => {
    const { tf } = await openToolFixture();
    const tool = createTaskflowTool(tf, { owner: OWNER, topics: ['payments.>'] });
    expect(tool.name).toBe('taskflow');
    expect(tool.inputJsonSchema).toBe(taskflowInputJsonSchema);
    for (const action of TASKFLOW_ACTIONS) expect(tool.description).toContain(`"action":"${action}"`);
    expect(tool.description).toContain('at most 30d away');
    expect(tool.description).toContain('payments.>');
  });
});
