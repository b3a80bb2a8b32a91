import type { HourlyCounts, InspectQueries, ResumeSample } from '../runtime/store/inspect.js';
import type { ResumeReason } from '../runtime/wake.js';

/** What the page's script hands to uPlot: x in epoch seconds (uPlot's time scale), one value array per series. */
export interface ChartSpec {
  type: 'bars' | 'points';
  x: number[];
  series: { label: string; values: (number | null)[] }[];
  yLabel: string;
}

/** The overview's charts, with what bounded each one. */
export interface OverviewCharts {
  /** Resumes per hour, one series per reason. */
  resumes: ChartSpec;
  /** Each timer or timeout resume: how late it came after its due time, in ms. */
  lateness: ChartSpec;
  /** Flows created and finished (finished, failed, cancelled) per hour. */
  throughput: ChartSpec;
  /** Sentences saying where a bound cut a chart short. */
  notes: string[];
  /** How many resumes the charts read. */
  resumesRead: number;
  /** When they were computed (epoch ms). */
  at: number;
}

const HOUR = 3_600_000;
/** The charts' window. */
export const CHART_WINDOW_HOURS = 24;
/** Newest resumes read for the resume and lateness charts. */
export const RESUME_CAP = 1_000;
/** Newest audit events of one kind counted for the throughput chart. */
export const EVENT_CAP = 5_000;
const REASONS: ResumeReason[] = ['timer', 'event', 'signal', 'timeout', 'manual'];

/** Reads and shapes the overview's charts: six bounded queries on `flow_events_kind_at`. */
export async function overviewCharts(q: InspectQueries, now: number): Promise<OverviewCharts> {
  const firstHour = Math.floor(now / HOUR) * HOUR - (CHART_WINDOW_HOURS - 1) * HOUR;
  const [resumes, created, finished, failed, cancelled] = await Promise.all([
    q.recentResumes(firstHour, RESUME_CAP),
    q.eventsPerHour('created', firstHour, EVENT_CAP),
    q.eventsPerHour('finished', firstHour, EVENT_CAP),
    q.eventsPerHour('failed', firstHour, EVENT_CAP),
    q.eventsPerHour('cancelled', firstHour, EVENT_CAP),
  ]);
  const hours = Array.from({ length: CHART_WINDOW_HOURS }, (_, i) => firstHour + i * HOUR);
  const x = hours.map((h) => h / 1000);
  const notes: string[] = [];
  if (resumes.length >= RESUME_CAP) notes.push(`Resumes and lateness: the newest ${RESUME_CAP.toLocaleString('en')} resumes of the window.`);
  const cappedKinds = [['created', created], ['finished', finished], ['failed', failed], ['cancelled', cancelled]].filter(([, c]) => (c as HourlyCounts).capped);
  if (cappedKinds.length > 0) notes.push(`Created and finished: the newest ${EVENT_CAP.toLocaleString('en')} events of each kind (${cappedKinds.map(([k]) => k).join(', ')} reached it).`);
  return {
    resumes: { type: 'bars', x, series: resumeSeries(resumes, hours), yLabel: 'resumes' },
    lateness: latenessChart(resumes),
    throughput: {
      type: 'bars',
      x,
      series: [
        { label: 'created', values: hours.map((h) => created.hours.get(h) ?? 0) },
        { label: 'finished', values: hours.map((h) => (finished.hours.get(h) ?? 0) + (failed.hours.get(h) ?? 0) + (cancelled.hours.get(h) ?? 0)) },
      ],
      yLabel: 'flows',
    },
    notes,
    resumesRead: resumes.length,
    at: now,
  };
}

function resumeSeries(resumes: ResumeSample[], hours: number[]): ChartSpec['series'] {
  const index = new Map(hours.map((h, i) => [h, i]));
  const counts = new Map<ResumeReason, number[]>();
  for (const resume of resumes) {
    const i = index.get(Math.floor(resume.at / HOUR) * HOUR);
    if (i === undefined) continue;
    let values = counts.get(resume.reason);
    if (!values) counts.set(resume.reason, (values = hours.map(() => 0)));
    values[i]! += 1;
  }
  return REASONS.filter((r) => counts.has(r)).map((r) => ({ label: r, values: counts.get(r)! }));
}

function latenessChart(resumes: ResumeSample[]): ChartSpec {
  const points = resumes.filter((r) => r.dueAt !== undefined).sort((a, b) => a.at - b.at);
  // uPlot wants one ascending x array; resumes in the same millisecond share a point.
  const x: number[] = [];
  const timer: (number | null)[] = [];
  const timeout: (number | null)[] = [];
  for (const r of points) {
    const late = Math.max(0, r.at - r.dueAt!);
    const t = r.at / 1000;
    if (x.at(-1) !== t) {
      x.push(t);
      timer.push(null);
      timeout.push(null);
    }
    const target = r.reason === 'timer' ? timer : timeout;
    target[target.length - 1] = Math.max(target.at(-1) ?? 0, late);
  }
  return { type: 'points', x, series: [{ label: 'timer', values: timer }, { label: 'timeout', values: timeout }], yLabel: 'ms late' };
}
