import { context } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, StackContextManager, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { DataPointType, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { openTaskflow, silentLogger, systemClock, TELEMETRY_ATTRIBUTES as A, type Flow, type Taskflow, type TaskflowOptions, type Wake } from '../src/index.js';
import { newFlow, T0 } from './support/taskflow.js';
import { ManualClock } from '../src/index.js';
import { tempDbPath } from './support/temp-db.js';
import { tempPgDatabase } from './support/pg-database.js';
import { until } from './support/until.js';

/** Collects on demand: the test reads the metrics when it wants them. */
class OnDemandReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const opened: Taskflow[] = [];
afterEach(async () => {
  for (const tf of opened.splice(0)) await tf.close();
});

function telemetryKit() {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    exporter,
    telemetry: { tracer: tracerProvider.getTracer('test'), meter: meterProvider.getMeter('test') },
    spans: (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name.startsWith(name)),
    async metric(name: string): Promise<MetricData | undefined> {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name);
    },
  };
}

async function open(options: TaskflowOptions): Promise<Taskflow> {
  const tf = await openTaskflow({ logger: silentLogger, ...options });
  opened.push(tf);
  return tf;
}

async function parked(tf: Taskflow, wait: Parameters<Taskflow['manager']['setWaiting']>[1]): Promise<Flow> {
  const flow = await tf.manager.createManaged(newFlow);
  await tf.manager.startRunning(flow.id);
  return tf.manager.setWaiting(flow.id, wait);
}

function pointValue(metric: MetricData | undefined, attributes: Record<string, string>): number | undefined {
  if (!metric || metric.dataPointType === DataPointType.HISTOGRAM || metric.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM) return undefined;
  const point = metric.dataPoints.find((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
  return point?.value as number | undefined;
}

describe('telemetry spans', () => {
  it('records a span per transition with the flow id, status, step and wake reason', async () => {
    const kit = telemetryKit();
    const clock = new ManualClock(T0);
    const tf = await open({ database: tempDbPath(), clock, telemetry: kit.telemetry });
    const flow = await parked(tf, { kind: 'timer', at: T0 + 60_000 });
    await tf.engine.tick(T0 + 60_000);
    const transitions = kit.spans('taskflow.transition').filter((s) => s.attributes[A.flowId] === flow.id);
    expect(transitions.map((s) => s.attributes[A.status])).toEqual(['running', 'waiting', 'running']);
    expect(transitions[1]!.attributes).toMatchObject({ [A.fromStatus]: 'running', [A.waitKind]: 'timer', [A.step]: flow.currentStep });
    expect(transitions[2]!.attributes).toMatchObject({ [A.fromStatus]: 'waiting', [A.wakeReason]: 'timer' });
  });

  it('stores the parking span as a traceparent in the waiting audit event', async () => {
    const kit = telemetryKit();
    const tf = await open({ database: tempDbPath(), clock: new ManualClock(T0), telemetry: kit.telemetry });
    const flow = await parked(tf, { kind: 'manual' });
    const waiting = (await tf.manager.listEvents(flow.id)).find((e) => e.kind === 'waiting')!;
    const parking = kit.spans('taskflow.transition waiting')[0]!.spanContext();
    expect(waiting.payload.traceparent).toBe(`00-${parking.traceId}-${parking.spanId}-01`);
  });

  it('runs onResume inside a resume span, linked to the parking span, with the host spans nested under it', async () => {
    const kit = telemetryKit();
    // A host's SDK registers a context manager; this one carries a synchronous handler's context.
    context.setGlobalContextManager(new StackContextManager().enable());
    onTestFinished(() => void context.disable());
    let hostSpanParent: string | undefined;
    const tf = await open({
      database: tempDbPath(),
      clock: systemClock,
      telemetry: kit.telemetry,
      onResume: () => {
        const span = kit.telemetry.tracer.startSpan('host work');
        hostSpanParent = (span as unknown as ReadableSpan).parentSpanContext?.spanId;
        span.end();
      },
    });
    await tf.start();
    const flow = await parked(tf, { kind: 'manual', signal: 'go' });
    await tf.engine.signal(flow.id, { signal: 'go' });
    await until(() => kit.spans('taskflow.resume').length === 1, 30_000);
    const resume = kit.spans('taskflow.resume')[0]!;
    const parking = kit.spans('taskflow.transition waiting')[0]!.spanContext();
    expect(resume.attributes).toMatchObject({ [A.flowId]: flow.id, [A.status]: 'running', [A.wakeReason]: 'signal', [A.attempt]: 1 });
    expect(resume.links.map((l) => l.context.spanId)).toEqual([parking.spanId]);
    expect(hostSpanParent).toBe(resume.spanContext().spanId);
  });

  it('links the resume to the parking span of another process after a restart', async () => {
    const path = tempDbPath();
    const before = telemetryKit();
    const first = await open({ database: path, clock: systemClock, telemetry: before.telemetry });
    const flow = await parked(first, { kind: 'timer', at: Date.now() + 300 });
    const parking = before.spans('taskflow.transition waiting')[0]!.spanContext();
    await first.close();

    const after = telemetryKit();
    const woke: Wake[] = [];
    const second = await open({ database: path, clock: systemClock, telemetry: after.telemetry, onResume: (_flow, wake) => void woke.push(wake) });
    await second.start();
    await until(() => after.spans('taskflow.resume').length === 1, 30_000);
    const resume = after.spans('taskflow.resume')[0]!;
    expect(woke[0]!.reason).toBe('timer');
    expect(resume.attributes[A.flowId]).toBe(flow.id);
    expect(resume.links).toHaveLength(1);
    expect(resume.links[0]!.context).toMatchObject({ traceId: parking.traceId, spanId: parking.spanId });
    expect(resume.spanContext().traceId).not.toBe(parking.traceId);
  });

  it('records a span per delivered event with its topic, correlation id and outcome', async () => {
    const kit = telemetryKit();
    const tf = await open({ database: tempDbPath(), clock: new ManualClock(T0), telemetry: kit.telemetry });
    const flow = await parked(tf, { kind: 'external_event', topic: 'payments.received', correlationId: 'INV-42' });
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-42' });
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-43' });
    const [resumed, kept] = kit.spans('taskflow.deliver');
    expect(resumed!.attributes).toMatchObject({ [A.topic]: 'payments.received', [A.correlationId]: 'INV-42', [A.outcome]: 'resumed', [A.resumed]: 1, [A.flowId]: flow.id });
    expect(kept!.attributes).toMatchObject({ [A.correlationId]: 'INV-43', [A.outcome]: 'kept', [A.resumed]: 0 });
    const transition = kit.spans('taskflow.transition running').find((s) => s.attributes[A.wakeReason] === 'event');
    expect(transition?.attributes[A.flowId]).toBe(flow.id);
  });
});

describe('telemetry metrics', () => {
  it('observes flows by status and the inbox size', async () => {
    const kit = telemetryKit();
    const tf = await open({ database: tempDbPath(), clock: new ManualClock(T0), telemetry: kit.telemetry });
    await parked(tf, { kind: 'manual' });
    await parked(tf, { kind: 'manual' });
    await tf.manager.createManaged(newFlow);
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-1' });
    await tf.engine.deliver({ topic: 'payments.received', correlationId: 'INV-2' });
    const flows = await kit.metric('taskflow.flows');
    expect(pointValue(flows, { [A.status]: 'waiting' })).toBe(2);
    expect(pointValue(flows, { [A.status]: 'created' })).toBe(1);
    expect(pointValue(flows, { [A.status]: 'finished' })).toBe(0);
    expect(pointValue(await kit.metric('taskflow.inbox.size'), {})).toBe(2);
  });

  it('observes flows by status on PostgreSQL too', async () => {
    const kit = telemetryKit();
    const tf = await open({ database: await tempPgDatabase(), clock: new ManualClock(T0), telemetry: kit.telemetry });
    await parked(tf, { kind: 'manual' });
    await tf.manager.createManaged(newFlow);
    const flows = await kit.metric('taskflow.flows');
    expect(pointValue(flows, { [A.status]: 'waiting' })).toBe(1);
    expect(pointValue(flows, { [A.status]: 'created' })).toBe(1);
    expect(pointValue(flows, { [A.status]: 'running' })).toBe(0);
  });

  it('records how late a timer resumed its flow', async () => {
    const kit = telemetryKit();
    const clock = new ManualClock(T0);
    const tf = await open({ database: tempDbPath(), clock, telemetry: kit.telemetry });
    await parked(tf, { kind: 'timer', at: T0 + 60_000 });
    await tf.engine.tick(T0 + 60_250);
    const lateness = await kit.metric('taskflow.resume.lateness');
    expect(lateness?.dataPointType).toBe(DataPointType.HISTOGRAM);
    const point = lateness!.dataPoints[0]!;
    expect(point.attributes).toEqual({ [A.wakeReason]: 'timer' });
    expect(point.value).toMatchObject({ count: 1, sum: 250 });
  });

  it('counts notification attempts and dead notifications', async () => {
    const kit = telemetryKit();
    const tf = await open({
      database: tempDbPath(),
      clock: systemClock,
      telemetry: kit.telemetry,
      maxResumeAttempts: 1,
      onResume: () => {
        throw new Error('the host is down');
      },
    });
    await tf.start();
    const flow = await parked(tf, { kind: 'manual' });
    await tf.engine.signal(flow.id, {});
    await until(async () => pointValue(await kit.metric('taskflow.notification.dead'), {}) === 1, 30_000);
    expect(pointValue(await kit.metric('taskflow.notification.attempts'), { [A.wakeReason]: 'signal' })).toBe(1);
    const resume = kit.spans('taskflow.resume')[0]!;
    expect(resume.status.code).toBe(2);
    expect(resume.events.map((e) => e.name)).toContain('exception');
  });

  it('reports the NATS bridge state when a bridge exists', async () => {
    const kit = telemetryKit();
    // A port nothing listens on: the bridge keeps connecting in the background.
    const tf = await open({ database: tempDbPath(), telemetry: kit.telemetry, nats: { servers: 'nats://127.0.0.1:1' } });
    await tf.start();
    await until(() => tf.bridge!.state !== 'idle', 30_000);
    const state = await kit.metric('taskflow.bridge.connected');
    expect(pointValue(state, { [A.bridgeState]: tf.bridge!.state })).toBe(1);
    expect(pointValue(state, { [A.bridgeState]: 'connected' })).toBe(0);
  });
});

describe('telemetry off or absent', () => {
  it('refuses a telemetry option that is neither a boolean nor { tracer?, meter? }', async () => {
    await expect(openTaskflow({ database: ':memory:', telemetry: 'yes' as unknown as boolean })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(openTaskflow({ database: ':memory:', telemetry: { tracer: {} as never } })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('runs a flow from wait to resume with telemetry off', async () => {
    const woke: string[] = [];
    const tf = await open({ database: tempDbPath(), clock: systemClock, telemetry: false, onResume: (flow) => void woke.push(flow.id) });
    await tf.start();
    const flow = await parked(tf, { kind: 'manual' });
    await tf.engine.signal(flow.id, {});
    await until(() => woke.length === 1, 30_000);
    const waiting = (await tf.manager.listEvents(flow.id)).find((e) => e.kind === 'waiting')!;
    expect(waiting.payload.traceparent).toBeUndefined();
  });

  it('stores no traceparent when no SDK is registered (the global API is a no-op)', async () => {
    const woke: string[] = [];
    const tf = await open({ database: tempDbPath(), clock: systemClock, onResume: (flow) => void woke.push(flow.id) });
    await tf.start();
    const flow = await parked(tf, { kind: 'manual' });
    await tf.engine.signal(flow.id, {});
    await until(() => woke.length === 1, 30_000);
    const waiting = (await tf.manager.listEvents(flow.id)).find((e) => e.kind === 'waiting')!;
    expect(waiting.payload).not.toHaveProperty('traceparent');
  });
});
