import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowError, openTaskflow, type Flow } from '../src/index.js';
import { parseRfc3339 } from '../src/runtime/instant.js';
import { normaliseKey, TEXT_LIMITS, type TextField } from '../src/runtime/text.js';
import { checkJsonValue } from '../src/runtime/validate.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { dialect, newFlow, openTestTaskflow, T0 } from './support/taskflow.js';

type Tf = Awaited<ReturnType<typeof openTestTaskflow>>;

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (FlowError.isInstance(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error('expected the call to be refused');
}

async function running(tf: Tf, state: Record<string, unknown> = {}): Promise<Flow> {
  const flow = await tf.manager.createManaged({ ...newFlow, state });
  return tf.manager.startRunning(flow.id);
}

async function waitingOnEvent(tf: Tf, correlationId = 'INV-42', state: Record<string, unknown> = {}): Promise<Flow> {
  const flow = await running(tf, state);
  return tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.received', correlationId, timeoutAt: new Date(T0 + 60_000) });
}

describe(`payloads and the state limit (${dialect})`, () => {
  it('an event payload larger than the state limit is refused at delivery, and nothing is resumed or kept', async () => {
    const tf = await openTestTaskflow({ stateLimit: 1024 });
    const flow = await waitingOnEvent(tf);
    const before = await snapshotDatabase(tf.path);
    const big = { blob: 'x'.repeat(2000) };
    expect(await refusal(tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: big }))).toMatch(
      /^invalid_input: the event payload is \d+ bytes, over the limit of 1024/,
    );
    expect(await refusal(tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-99', payload: big }))).toMatch(/^invalid_input/);
    expect(await snapshotDatabase(tf.path)).toEqual(before);
    expect((await tf.manager.get(flow.id))!.status).toBe('waiting');
  });

  it('an event that would take a waiting flow over the limit is refused whole; the flow can still fail, or be cancelled', async () => {
    const tf = await openTestTaskflow({ stateLimit: 1024 });
    const full = await waitingOnEvent(tf, 'INV-42', { notes: 'n'.repeat(800) });
    const roomy = await waitingOnEvent(tf, 'INV-42');
    const before = await snapshotDatabase(tf.path);
    expect(await refusal(tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { memo: 'm'.repeat(300) } }))).toMatch(
      new RegExp(`^invalid_input: the event payload would make the state of flow ${full.id} \\d+ bytes, over the limit of 1024`),
    );
    expect(await snapshotDatabase(tf.path)).toEqual(before);
    expect((await tf.manager.fail(full.id, 'payment memo too large')).status).toBe('failed');
    expect((await tf.manager.cancel(roomy.id)).status).toBe('cancelled');
  });

  it('a signal payload that would take the state over the limit is refused; the flow still waits', async () => {
    const tf = await openTestTaskflow({ stateLimit: 1024 });
    const flow = await tf.manager.setWaiting((await running(tf, { notes: 'n'.repeat(800) })).id, { kind: 'manual' });
    expect(await refusal(tf.engine.signal(flow.id, { payload: { memo: 'm'.repeat(300) } }))).toMatch(/^invalid_input: the signal payload would make/);
    expect(await tf.manager.get(flow.id)).toEqual(flow);
    expect((await tf.engine.signal(flow.id, { payload: { ok: true } })).state).toMatchObject({ resume_signal: { ok: true } });
  });

  it('a kept event that would take the state over the limit refuses the wait that would take it', async () => {
    const tf = await openTestTaskflow({ stateLimit: 1024 });
    expect(await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-7', payload: { memo: 'm'.repeat(300) } })).toMatchObject({ kept: true });
    const flow = await running(tf, { notes: 'n'.repeat(800) });
    expect(await refusal(tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-7' }))).toMatch(
      /^invalid_input: the kept event waiting on this key would make/,
    );
    expect(await tf.manager.get(flow.id)).toEqual(flow);
  });

  it('a flow over a lowered limit can still fail, finish without new state, be cancelled, and shrink; it cannot grow', async () => {
    const first = await openTestTaskflow({ stateLimit: 8192 });
    const ids = await Promise.all([0, 1, 2, 3].map(async () => (await running(first, { notes: 'n'.repeat(3000) })).id));
    await first.close();
    const tf = await openTestTaskflow({ database: first.path, stateLimit: 1024 });
    const [toFail, toFinish, toCancel, toShrink] = ids as [string, string, string, string];
    expect((await tf.manager.fail(toFail, 'r'.repeat(4000))).state).toMatchObject({ failure: { reason: 'r'.repeat(4000) } });
    expect((await tf.manager.finish(toFinish)).status).toBe('finished');
    expect((await tf.manager.requestCancel(toCancel)).cancelRequested).toBe(true);
    expect((await tf.manager.cancel(toCancel)).status).toBe('cancelled');
    expect(await refusal(tf.manager.updateState(toShrink, { more: 1 }))).toMatch(/^invalid_input: the patch would make/);
    expect((await tf.manager.updateState(toShrink, { notes: null })).state).toEqual({ notes: null });
  });
});

describe(`one rule for every key (${dialect})`, () => {
  it('a wait on a padded correlation id is resumed by the same key delivered padded otherwise, or not at all', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.setWaiting((await running(tf)).id, { kind: 'external_event', topic: ' payments.received ', correlationId: 'INV-42 ' });
    expect(flow.wait).toMatchObject({ topic: 'payments.received', correlationId: 'INV-42' });
    expect(await tf.engine.deliver({ topic: 'payments.received', correlationId: '\tINV-42' })).toMatchObject({ resumed: [flow.id] });
  });

  it('keys are compared in Unicode NFC: a decomposed é matches a composed one', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.setWaiting((await running(tf)).id, { kind: 'external_event', topic: 'orders.paid', correlationId: 'caf\u00e9-1' });
    expect(await tf.engine.deliver({ topic: 'orders.paid', correlationId: 'cafe\u0301-1' })).toMatchObject({ resumed: [flow.id] });
  });

  it('signal names, event ids, owners and idempotency keys follow the same rule', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.setWaiting((await running(tf)).id, { kind: 'manual', signal: ' approved' });
    expect((await tf.engine.signal(flow.id, { signal: 'approved\n' })).status).toBe('running');
    const first = await tf.manager.createManaged({ ...newFlow, ownerSessionKey: ' agent:ana:session:1 ', idempotencyKey: 'order-42 ' });
    const again = await tf.manager.createManaged({ ...newFlow, ownerSessionKey: 'agent:ana:session:1', idempotencyKey: ' order-42' });
    expect(again.id).toBe(first.id);
    expect((await tf.manager.listByOwner('agent:ana:session:1 ')).map((f) => f.id)).toEqual([first.id]);
    expect(await tf.engine.deliver({ topic: 'a.b', correlationId: 'k', eventId: 'evt-1' })).toMatchObject({ kept: true });
    expect(await tf.engine.deliver({ topic: 'a.b', correlationId: 'k', eventId: ' evt-1 ' })).toMatchObject({ duplicate: true });
  });

  it('a key with a control character inside is refused, on waits and deliveries alike', async () => {
    const tf = await openTestTaskflow();
    const flow = await running(tf);
    for (const bad of ['INV\u000042', 'INV\n42', 'INV\u007f42']) {
      expect(await refusal(tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.received', correlationId: bad }))).toMatch(
        /^invalid_input: invalid wait: correlationId must not contain control characters/,
      );
      expect(await refusal(tf.engine.deliver({ topic: 'payments.received', correlationId: bad }))).toMatch(/^invalid_input: correlationId must not/);
    }
  });

  it('NUL and lone surrogates are refused as invalid_input in text and in JSON, and nothing reaches the store', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.setWaiting((await running(tf)).id, { kind: 'manual' });
    const before = await snapshotDatabase(tf.path);
    const refusals = [
      tf.manager.createManaged({ ...newFlow, goal: 'ship\u0000it' }),
      tf.manager.createManaged({ ...newFlow, goal: 'ship \ud83d it' }),
      tf.manager.createManaged({ ...newFlow, state: { note: 'a\u0000b' } }),
      tf.manager.createManaged({ ...newFlow, state: { ['k\udfff']: 1 } }),
      tf.manager.resume(flow.id, { note: '\u0000' }),
      tf.manager.fail(flow.id, 'bad\u0000reason'),
      tf.engine.signal(flow.id, { payload: ['\ud800'] }),
      tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-1', payload: 'x\u0000' }),
    ];
    for (const call of refusals) expect(await refusal(call)).toMatch(/^invalid_input/);
    expect(await snapshotDatabase(tf.path)).toEqual(before);
    // A surrogate pair (an emoji) and a literal backslash-u-zero text are ordinary text.
    const fine = await tf.manager.createManaged({ ...newFlow, goal: 'ship 📦', state: { note: '\\u0000 is how JSON writes NUL' } });
    expect(await tf.manager.get(fine.id)).toEqual(fine);
  });

  it.each(Object.entries(TEXT_LIMITS) as [TextField, number][])('%s is refused beyond %i bytes, and taken at exactly that size', async (field, limit) => {
    const tf = await openTestTaskflow();
    const flow = await running(tf);
    // A three-byte character at the end: the limit counts UTF-8 bytes, not characters.
    const atLimit = `${'k'.repeat(limit - 3)}€`;
    const over = `${'k'.repeat(limit - 2)}€`;
    const call = (value: string): Promise<unknown> => {
      switch (field) {
        case 'controllerId':
        case 'ownerSessionKey':
        case 'currentStep':
        case 'idempotencyKey':
        case 'requesterOrigin':
        case 'goal':
          return tf.manager.createManaged({ ...newFlow, [field]: value });
        case 'topic':
          return tf.engine.deliver({ topic: value, correlationId: 'INV-1' });
        case 'correlationId':
          return tf.engine.deliver({ topic: 'payments.received', correlationId: value });
        case 'eventId':
          return tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-1', eventId: value });
        case 'flowId':
          return tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-1', flowId: value });
        case 'signal':
          return tf.manager.setWaiting(flow.id, { kind: 'manual', signal: value });
        case 'reason':
          return tf.manager.fail(flow.id, value);
        case 'runId':
        case 'task':
        case 'runtime':
        case 'childSessionKey':
          return tf.manager.recordStepObservation({ flowId: flow.id, runId: 'run-1', task: 'check', status: 'running', [field]: value });
      }
    };
    expect(await refusal(call(over))).toMatch(new RegExp(`^invalid_input: .*${field} is \\d+ bytes or more, over its limit of ${limit} bytes`));
    await call(atLimit);
  });

  it('instants are RFC 3339 with a zone (or a Date, or epoch ms); nothing is read in the server zone', async () => {
    const tf = await openTestTaskflow();
    const flow = await running(tf);
    for (const at of ['Jan 2 2026 10:00', '2026-01-02T10:00:00', '2026-01-02', '2026-02-30T10:00:00Z', '2026-01-02T24:00:00Z', '1767348000000']) {
      expect(await refusal(tf.manager.setWaiting(flow.id, { kind: 'timer', at }))).toMatch(/^invalid_input: invalid wait: at .* is not a valid time; use RFC 3339/);
    }
    const waiting = await tf.manager.setWaiting(flow.id, { kind: 'timer', at: '2026-01-02T11:00:00+01:00' });
    expect(waiting.wait).toEqual({ kind: 'timer', at: new Date('2026-01-02T10:00:00Z') });
  });
});

describe(`JSON inputs are stored as they serialise (${dialect})`, () => {
  it('a state with a toJSON method is stored as its JSON object; one that serialises to a string is refused', async () => {
    const tf = await openTestTaskflow();
    const flow = await tf.manager.createManaged({ ...newFlow, state: { toJSON: () => ({ order: 42 }) } as never });
    expect(flow.state).toEqual({ order: 42 });
    expect(await tf.manager.get(flow.id)).toEqual(flow);
    expect(await refusal(tf.manager.createManaged({ ...newFlow, state: { toJSON: () => 'a string' } as never }))).toMatch(
      /^invalid_input: state must serialise to a JSON object/,
    );
  });

  it('what a call returns is what a later read returns: Dates in state come back as the strings stored', async () => {
    const tf = await openTestTaskflow();
    const flow = await running(tf);
    const updated = await tf.manager.updateState(flow.id, { due: new Date(T0), skipped: undefined });
    expect(updated.state).toEqual({ due: new Date(T0).toISOString() });
    expect(await tf.manager.get(flow.id)).toEqual(updated);
  });

  it('a caller mutating its object after the call changes nothing stored', async () => {
    const tf = await openTestTaskflow();
    const patch = { items: [1, 2] };
    const flow = await tf.manager.updateState((await running(tf)).id, patch);
    patch.items.push(3);
    expect(flow.state).toEqual({ items: [1, 2] });
  });
});

describe(`resume data describes the latest wake only (${dialect})`, () => {
  it('a timeout after an event resume no longer shows the event', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingOnEvent(tf);
    expect((await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { paid: true } })).resumed).toEqual([flow.id]);
    expect((await tf.manager.get(flow.id))!.state).toEqual({ resume_event: { paid: true } });
    await tf.manager.setWaiting(flow.id, { kind: 'external_event', topic: 'payments.refunded', correlationId: 'INV-42', timeoutAt: new Date(T0 + 1000) });
    expect(await tf.engine.tick(T0 + 1000)).toMatchObject({ timedOut: 1 });
    expect((await tf.manager.get(flow.id))!.state).toEqual({});
  });

  it('a signal after an event replaces resume_event with resume_signal; a bare signal or a timer leaves neither', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingOnEvent(tf);
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: { paid: true } });
    await tf.manager.setWaiting(flow.id, { kind: 'manual' });
    expect((await tf.engine.signal(flow.id, { payload: { by: 'ana' } })).state).toEqual({ resume_signal: { by: 'ana' } });
    await tf.manager.setWaiting(flow.id, { kind: 'manual' });
    expect((await tf.engine.signal(flow.id)).state).toEqual({});
    await tf.manager.updateState(flow.id, { resume_event: 'set by hand' });
    await tf.manager.setWaiting(flow.id, { kind: 'timer', at: new Date(T0 + 5) });
    await tf.engine.tick(T0 + 5);
    expect((await tf.manager.get(flow.id))!.state).toEqual({});
  });

  it('a manual resume drops old resume data but keeps what its own patch sets', async () => {
    const tf = await openTestTaskflow();
    const flow = await waitingOnEvent(tf);
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42', payload: 1 });
    await tf.manager.setWaiting(flow.id, { kind: 'manual' });
    expect((await tf.manager.resume(flow.id, { approved: true })).state).toEqual({ approved: true });
  });
});

describe(`properties of the input rules (${dialect})`, () => {
  const padding = fc.constantFrom('', ' ', '\t', '\n', '  \r\n', '\u00a0', '\u2003');
  const keyText = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).filter((text) => {
    try {
      normaliseKey(text, 'correlationId');
      return true;
    } catch {
      return false;
    }
  });

  it('the key rule is idempotent and ignores surrounding white space', () => {
    fc.assert(
      fc.property(keyText, padding, padding, (text, left, right) => {
        const key = normaliseKey(text, 'correlationId');
        expect(normaliseKey(key, 'correlationId')).toBe(key);
        expect(normaliseKey(`${left}${text}${right}`, 'correlationId')).toBe(key);
      }),
    );
  });

  it('a flow waiting on any key is resumed by a delivery of that key, padded differently', async () => {
    const tf = await openTestTaskflow();
    await fc.assert(
      fc.asyncProperty(keyText, padding, padding, async (text, left, right) => {
        const flow = await tf.manager.setWaiting((await running(tf)).id, { kind: 'external_event', topic: 'prop.key', correlationId: `${left}${text}` });
        const result = await tf.engine.deliver({ topic: 'prop.key', correlationId: `${text}${right}` });
        expect(result.resumed).toEqual([flow.id]);
      }),
      { numRuns: dialect === 'postgres' ? 15 : 40 },
    );
  });

  it('every instant written by toISOString parses back to itself; no other format is guessed', () => {
    const inRange = fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true });
    fc.assert(
      fc.property(inRange, (date) => {
        expect(parseRfc3339(date.toISOString())).toEqual(date);
        expect(parseRfc3339(date.toString())).toBeUndefined();
      }),
    );
  });

  it('a JSON value is taken as exactly what JSON.parse(JSON.stringify(value)) gives, or refused when it holds a NUL or a lone surrogate', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        const unstorable = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i.test(text);
        if (unstorable) {
          expect(() => checkJsonValue(value, 1_048_576, 'value')).toThrow(/NUL character or a lone surrogate/);
          return;
        }
        expect(checkJsonValue(value, 1_048_576, 'value')!.value).toEqual(JSON.parse(text));
      }),
    );
  });
});

describe(`openTaskflow options that make no sense (${dialect})`, () => {
  it.each([
    [{ tickInterval: 0 }, /tickInterval must be longer than 0/],
    [{ resumeLease: 0 }, /resumeLease must be longer than 0/],
    [{ resumeLease: '-1s' }, /resumeLease "-1s" is not a duration/],
    [{ tickInterval: Number.POSITIVE_INFINITY }, /tickInterval must be a non-negative number of milliseconds/],
    [{ tickInterval: {} }, /tickInterval must be milliseconds or a string such as "30d", got an object/],
    [{ stateLimit: -1 }, /stateLimit must be a whole number of bytes/],
  ])('%o is refused with a message saying why', async (options, message) => {
    const error = await openTaskflow({ database: ':memory:', ...(options as object) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(FlowError.isInstance(error) && error.code).toBe('invalid_input');
    expect((error as Error).message).toMatch(message);
  });
});
