import type { Attributes, Link, Meter, Span, SpanContext, Tracer } from '@opentelemetry/api';
import type { CommitPreparer } from './store/commit-observer.js';
import type { DeliveryResult, EventDelivery } from './delivery.js';
import { FLOW_STATUSES, type Flow, type JsonObject } from './flow.js';
import type { Logger } from './logger.js';
import type { ClaimedNotification, FlowStore } from './store/contract.js';
import { wakeAtOf } from './wait.js';

/**
 * OpenTelemetry for {@link openTaskflow}: `tracer` and `meter` default to the
 * global providers of `@opentelemetry/api` (an optional peer dependency).
 */
export interface TelemetryOptions {
  /** An OpenTelemetry `Tracer`. */
  tracer?: TelemetryTracer;
  /** An OpenTelemetry `Meter`. */
  meter?: TelemetryMeter;
}

/**
 * An OpenTelemetry `Tracer` of `@opentelemetry/api`, typed by the one method the
 * option check reads, so the package's types do not need that package.
 */
export interface TelemetryTracer {
  startSpan(name: string, ...rest: never[]): unknown;
}

/** An OpenTelemetry `Meter` of `@opentelemetry/api`, typed like {@link TelemetryTracer}. */
export interface TelemetryMeter {
  createCounter(name: string, ...rest: never[]): unknown;
  createHistogram(name: string, ...rest: never[]): unknown;
  createObservableGauge(name: string, ...rest: never[]): unknown;
}

/** The `telemetry` option: `false` turns it off; `true` or absent use the global API when it is installed. */
export type TelemetryOption = TelemetryOptions | boolean;

/** Attribute names of the spans and metrics (documented in the README, "Telemetry"). */
export const TELEMETRY_ATTRIBUTES = {
  flowId: 'taskflow.flow.id',
  status: 'taskflow.flow.status',
  fromStatus: 'taskflow.flow.from_status',
  step: 'taskflow.flow.step',
  waitKind: 'taskflow.wait.kind',
  wakeReason: 'taskflow.wake.reason',
  attempt: 'taskflow.notification.attempt',
  topic: 'taskflow.event.topic',
  correlationId: 'taskflow.event.correlation_id',
  resumed: 'taskflow.event.resumed',
  outcome: 'taskflow.event.outcome',
  bridgeState: 'taskflow.bridge.state',
} as const;

/** The `waiting` audit payload key that holds the W3C traceparent of the span that parked the flow. */
export const TRACEPARENT_KEY = 'traceparent';

const A = TELEMETRY_ATTRIBUTES;
const SPAN_KIND_CONSUMER = 4;
const SPAN_STATUS_ERROR = 2;

/** What the engine reports to telemetry; {@link NO_TELEMETRY} when off. */
export interface EngineTelemetry {
  /** Runs one delivery of a resume notification (the `onResume` handler) inside its span. */
  resume(notification: ClaimedNotification & { flow: Flow }, run: () => Promise<void> | void): Promise<void>;
  /** Runs one delivered event or NATS message inside its span. */
  deliver(event: EventDelivery, run: () => Promise<DeliveryResult>): Promise<DeliveryResult>;
  /** A notification was parked as dead. */
  dead(notification: ClaimedNotification): void;
}

/** The runtime's telemetry: the engine's hooks, the commit preparer (a span per transition) and the gauges. */
export interface RuntimeTelemetry extends EngineTelemetry {
  readonly enabled: boolean;
  /** For `observeCommits`: a span per committed flow write. */
  readonly prepareCommit: CommitPreparer | undefined;
  /** Reads `store` for the gauges (flows by status, inbox size), the bridge state when set, and the parking spans of resumes; until closed. */
  observe(store: FlowStore, bridgeState: (() => string) | undefined): void;
  close(): void;
}

/** Telemetry off: every hook just runs its work. */
export const NO_TELEMETRY: RuntimeTelemetry = {
  enabled: false,
  prepareCommit: undefined,
  resume: async (_notification, run) => {
    await run();
  },
  deliver: (_event, run) => run(),
  dead: () => {},
  observe: () => {},
  close: () => {},
};

type Api = typeof import('@opentelemetry/api');

/**
 * Loads `@opentelemetry/api` unless telemetry is off; without the package,
 * telemetry is off (and a warning is logged when it was asked for explicitly).
 */
export async function openTelemetry(option: TelemetryOption | undefined, logger: Logger, version: string): Promise<RuntimeTelemetry> {
  if (option === false) return NO_TELEMETRY;
  let api: Api;
  try {
    api = await import('@opentelemetry/api');
  } catch {
    if (option !== undefined) logger.warn({}, 'taskflow: telemetry was asked for but @opentelemetry/api is not installed; it is off');
    return NO_TELEMETRY;
  }
  const given = typeof option === 'object' ? option : {};
  const tracer = (given.tracer as Tracer | undefined) ?? api.trace.getTracer('nexo-taskflow', version);
  const meter = (given.meter as Meter | undefined) ?? api.metrics.getMeter('nexo-taskflow', version);
  return new OtelTelemetry(api, tracer, meter, logger);
}

class OtelTelemetry implements RuntimeTelemetry {
  readonly enabled = true;
  private readonly attempts;
  private readonly deadNotifications;
  private readonly lateness;
  private readonly gauges: { flows: ReturnType<Meter['createObservableGauge']>; inbox: ReturnType<Meter['createObservableGauge']>; bridge: ReturnType<Meter['createObservableGauge']> };
  private observed: (() => void) | undefined;
  /** Where resume spans read the span that parked their flow; set by {@link observe}. */
  private store: FlowStore | undefined;

  constructor(
    private readonly api: Api,
    private readonly tracer: Tracer,
    meter: Meter,
    private readonly logger: Logger,
  ) {
    this.attempts = meter.createCounter('taskflow.notification.attempts', { description: 'Deliveries of resume notifications to onResume' });
    this.deadNotifications = meter.createCounter('taskflow.notification.dead', { description: 'Resume notifications parked as dead' });
    this.lateness = meter.createHistogram('taskflow.resume.lateness', {
      description: 'How late a timer or timeout resumed its flow: wake time minus due time',
      unit: 'ms',
    });
    this.gauges = {
      flows: meter.createObservableGauge('taskflow.flows', { description: 'Flows by status' }),
      inbox: meter.createObservableGauge('taskflow.inbox.size', { description: 'Events kept in the inbox for a later wait' }),
      bridge: meter.createObservableGauge('taskflow.bridge.connected', {
        description: 'NATS bridge connection: 1 for the current state (attribute taskflow.bridge.state), 0 for the others',
      }),
    };
  }

  readonly prepareCommit: CommitPreparer = (loaded, writes) => {
    const before = new Map(loaded.flows.map((flow) => [flow.id, flow]));
    const spans: Span[] = [];
    for (const write of writes) {
      const { flow } = write;
      const previous = before.get(flow.id);
      const attributes = flowAttributes(flow);
      if (previous) attributes[A.fromStatus] = previous.status;
      if (write.wake) attributes[A.wakeReason] = write.wake.reason;
      if (flow.wait) attributes[A.waitKind] = flow.wait.kind;
      const span = this.tracer.startSpan(`taskflow.transition ${flow.status}`, { attributes });
      spans.push(span);
      // A parked flow carries its span's context in its `waiting` audit event: the resume links to it.
      const parked = write.events.findIndex((event) => event.kind === 'waiting');
      const traceparent = parked >= 0 ? toTraceparent(span.spanContext()) : undefined;
      if (traceparent) write.events[parked] = { ...write.events[parked]!, payload: { ...write.events[parked]!.payload, [TRACEPARENT_KEY]: traceparent } };
      // Timers, timeouts and occurrences: how late the wake came after the due time.
      const due = previous?.wait ? wakeAtOf(previous.wait) : undefined;
      if (write.wake && due && (write.wake.reason === 'timer' || write.wake.reason === 'timeout' || write.wake.reason === 'recurring')) {
        this.lateness.record(Math.max(0, write.wake.at.getTime() - due.getTime()), { [A.wakeReason]: write.wake.reason });
      }
    }
    return (error) => {
      for (const span of spans) {
        if (error !== undefined) fail(span, error);
        span.end();
      }
    };
  };

  async resume(notification: ClaimedNotification & { flow: Flow }, run: () => Promise<void> | void): Promise<void> {
    const { flow, wake, attempts } = notification;
    this.attempts.add(1, { [A.wakeReason]: wake.reason });
    const attributes = { ...flowAttributes(flow), [A.wakeReason]: wake.reason, [A.attempt]: attempts };
    const span = this.tracer.startSpan('taskflow.resume', { kind: SPAN_KIND_CONSUMER, attributes });
    // One indexed read, only when the span is kept (no SDK registered: none).
    if (span.isRecording()) span.addLinks(await this.parkingLinks(notification.flowId));
    try {
      await this.api.context.with(this.api.trace.setSpan(this.api.context.active(), span), run);
    } catch (error) {
      fail(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  async deliver(event: EventDelivery, run: () => Promise<DeliveryResult>): Promise<DeliveryResult> {
    // Not yet validated: the engine refuses a malformed event inside the span.
    const attributes: Attributes = {};
    try {
      const given = (typeof event === 'object' && event !== null ? event : {}) as Partial<Record<keyof EventDelivery, unknown>>;
      for (const [key, name] of [['topic', A.topic], ['correlationId', A.correlationId], ['flowId', A.flowId]] as const) {
        const value = given[key];
        if (typeof value === 'string') attributes[name] = value.slice(0, 256);
      }
    } catch {
      // A hostile event (a throwing getter): the engine refuses it inside the span.
    }
    const topic = attributes[A.topic];
    const span = this.tracer.startSpan(typeof topic === 'string' ? `taskflow.deliver ${topic}` : 'taskflow.deliver', { kind: SPAN_KIND_CONSUMER, attributes });
    try {
      const result = await this.api.context.with(this.api.trace.setSpan(this.api.context.active(), span), run);
      span.setAttribute(A.resumed, result.resumed.length);
      span.setAttribute(A.outcome, result.duplicate ? 'duplicate' : result.dropped ? 'dropped' : result.kept ? 'kept' : 'resumed');
      if (result.resumed.length === 1) span.setAttribute(A.flowId, result.resumed[0]!);
      return result;
    } catch (error) {
      fail(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  dead(notification: ClaimedNotification): void {
    this.deadNotifications.add(1, { [A.wakeReason]: notification.wake.reason });
  }

  observe(store: FlowStore, bridgeState: (() => string) | undefined): void {
    this.store = store;
    const { flows, inbox, bridge } = this.gauges;
    const flowsCallback = async (result: { observe(value: number, attributes?: Attributes): void }) => {
      const counts = await store.countByStatus();
      for (const status of FLOW_STATUSES) result.observe(counts[status] ?? 0, { [A.status]: status });
    };
    const inboxCallback = async (result: { observe(value: number, attributes?: Attributes): void }) => {
      const keys = await store.listInbox();
      result.observe(keys.reduce((sum, key) => sum + key.events, 0));
    };
    const bridgeCallback = (result: { observe(value: number, attributes?: Attributes): void }) => {
      const state = bridgeState?.();
      for (const each of BRIDGE_STATES) result.observe(each === state ? 1 : 0, { [A.bridgeState]: each });
    };
    const guarded =
      (callback: typeof flowsCallback) =>
      async (result: Parameters<typeof flowsCallback>[0]): Promise<void> => {
        try {
          await callback(result);
        } catch (error) {
          this.logger.warn({ err: error }, 'taskflow: a telemetry gauge could not be read');
        }
      };
    const flowsObserver = guarded(flowsCallback);
    const inboxObserver = guarded(inboxCallback);
    flows.addCallback(flowsObserver);
    inbox.addCallback(inboxObserver);
    if (bridgeState) bridge.addCallback(bridgeCallback);
    this.observed = () => {
      flows.removeCallback(flowsObserver);
      inbox.removeCallback(inboxObserver);
      if (bridgeState) bridge.removeCallback(bridgeCallback);
    };
  }

  close(): void {
    this.observed?.();
    this.observed = undefined;
  }

  /** The link to the span that parked the flow, read from its last `waiting` audit event (any process may have written it). */
  private async parkingLinks(flowId: string): Promise<Link[]> {
    try {
      const parked = (await this.store?.lastEvents([flowId], 'waiting'))?.get(flowId);
      const context = parked ? fromTraceparent((parked.payload as JsonObject)[TRACEPARENT_KEY]) : undefined;
      return context ? [{ context }] : [];
    } catch (error) {
      this.logger.warn({ err: error, flowId }, 'taskflow: the span that parked a flow could not be read');
      return [];
    }
  }
}

const BRIDGE_STATES = ['idle', 'connecting', 'connected', 'reconnecting', 'closed'] as const;

function flowAttributes(flow: Flow): Attributes {
  return { [A.flowId]: flow.id, [A.status]: flow.status, [A.step]: flow.currentStep };
}

function fail(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SPAN_STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
}

/** The W3C `traceparent` of a valid span context. */
function toTraceparent(context: SpanContext): string | undefined {
  if (!/^[0-9a-f]{32}$/.test(context.traceId) || /^0+$/.test(context.traceId) || !/^[0-9a-f]{16}$/.test(context.spanId)) return undefined;
  return `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The span context a W3C `traceparent` names, marked remote; undefined when it is not one. */
function fromTraceparent(value: unknown): SpanContext | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value);
  if (!match || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined;
  return { traceId: match[1]!, spanId: match[2]!, traceFlags: Number.parseInt(match[3]!, 16), isRemote: true };
}
