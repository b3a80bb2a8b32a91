/**
 * Telemetry: a flow parks on a timer in one runtime, the runtime closes, a second
 * runtime on the same file resumes it; the resume span links to the span that
 * parked the flow. Run with `npm run build && npx tsx examples/telemetry/main.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metrics, trace } from '@opentelemetry/api';
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { openTaskflow, silentLogger } from 'nexo-taskflow';

// A host registers its SDK once; the runtime uses the global providers by default.
const spans = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] }));
const reader = new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 60_000 });
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const folder = mkdtempSync(join(tmpdir(), 'taskflow-telemetry-'));
const database = join(folder, 'taskflow.db');
try {
  const first = await openTaskflow({ database, logger: silentLogger });
  const flow = await first.manager.createManaged({ controllerId: 'demo/telemetry', goal: 'wake in one second', ownerSessionKey: 'agent:demo:session:1' });
  await first.manager.startRunning(flow.id);
  await first.manager.setWaiting(flow.id, { kind: 'timer', at: Date.now() + 1_000 });
  await first.close();

  let resumed!: () => void;
  const done = new Promise<void>((resolve) => (resumed = resolve));
  const second = await openTaskflow({ database, logger: silentLogger, onResume: () => resumed() });
  await second.start();
  await done;
  await reader.forceFlush(); // the metrics, printed by the console exporter
  await second.close();

  for (const span of spans.getFinishedSpans()) {
    const links = span.links.map((link) => link.context.spanId).join(', ');
    console.log(`${span.name.padEnd(30)} span ${span.spanContext().spanId}  status ${String(span.attributes['taskflow.flow.status'])}${links ? `  linked to ${links}` : ''}`);
  }
} finally {
  rmSync(folder, { recursive: true, force: true });
}
