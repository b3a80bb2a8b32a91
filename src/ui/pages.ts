import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { FLOW_STATUSES, type Flow, type FlowEvent, type FlowStatus, type FlowStep } from '../runtime/flow.js';
import type { InboxKeySummary, ResumeNotification } from '../runtime/store/contract.js';
import { wakeAtOf, type WaitCondition } from '../runtime/wait.js';
import { describeAnyOf } from '../runtime/any-of.js';
import { describeSchedule } from '../runtime/recurring/schedule.js';
import type { NearMiss } from '../runtime/doctor/diagnose.js';
import { CHART_WINDOW_HOURS, type ChartSpec, type OverviewCharts } from './charts.js';

/** Rendered HTML; every interpolated value is escaped by `hono/html`. */
export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** What the action forms need to know. */
export interface ActionContext {
  readOnly: boolean;
  /** The request already carries the token (cookie): forms need no token field. */
  authorised: boolean;
}

/** The frame of every page: the live script, the navigation, a `main` the live script refreshes. */
export function layout(title: string, body: Html, message?: string): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title} · taskflow</title>
<link rel="stylesheet" href="/assets/uplot.css">
<link rel="stylesheet" href="/assets/inspector.css">
<script src="/assets/uplot.js" defer></script>
<script src="/assets/inspector.js" defer></script>
</head>
<body>
<header><a href="/" class="brand">taskflow inspector</a> <a href="/">Overview</a> <a href="/flows">Flows</a> <a href="/waits">Waits</a>
<span id="live" class="live" title="updates as flows move">live</span></header>
${message === undefined ? '' : html`<p class="message" role="status">${message}</p>`}
<main id="main">${body}</main>
</body>
</html>`;
}

export const time = (date: Date | undefined | null) => (date ? date.toISOString().replace('.000Z', 'Z') : '');

/** "in 3m 20s" or "5s ago". */
export function timeLeft(at: Date, now: number): string {
  const ms = at.getTime() - now;
  const abs = Math.abs(ms);
  const s = Math.round(abs / 1000);
  const parts = s >= 86400 ? `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h` : s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
  return ms >= 0 ? `in ${parts}` : `${parts} ago`;
}

/** When a wait wakes the flow on its own (timer or timeout), if ever. */
export function wakeAt(wait: WaitCondition | null): Date | undefined {
  if (!wait) return undefined;
  return wakeAtOf(wait);
}

export function describeWait(wait: WaitCondition | null): string {
  if (!wait) return '';
  if (wait.kind === 'timer') return `timer at ${time(wait.at)}`;
  if (wait.kind === 'any') return `first of: ${describeAnyOf(wait, time)}`;
  if (wait.kind === 'recurring') return `occurrence ${wait.occurrence} at ${time(wait.at)}`;
  if (wait.kind === 'external_event') return `event ${wait.topic} / ${wait.correlationId}${wait.timeoutAt ? ` (timeout ${time(wait.timeoutAt)})` : ''}`;
  return `signal${wait.signal ? ` "${wait.signal}"` : ''}${wait.timeoutAt ? ` (timeout ${time(wait.timeoutAt)})` : ''}`;
}

export const flowLink = (flow: Flow) => html`<a href="/flows/${encodeURIComponent(flow.id)}" class="flow-link">${flow.id}</a>`;
const statusBadge = (status: FlowStatus) => html`<span class="status status-${status}">${status}</span>`;

export function tokenField(ctx: ActionContext): Html {
  return ctx.authorised ? html`` : html`<input name="token" type="password" placeholder="action token" required autocomplete="off">`;
}

/** Everything the overview shows. */
export interface OverviewData {
  counts: Partial<Record<FlowStatus, number>>;
  /** Statuses whose count stopped at the cap: shown as "n+". */
  cappedStatuses: FlowStatus[];
  waitingByKind: Record<string, number>;
  waitingSampled: boolean;
  timers: Flow[];
  inbox: InboxKeySummary[];
  dead: ResumeNotification[];
  /** Kept events whose key nearly matches a waiting key (`tf.inboxHints()`). */
  hints?: NearMiss[];
  /** Failed at least once, not dead: being retried. */
  retrying: ResumeNotification[];
  charts: OverviewCharts;
  now: number;
}

function chart(id: string, title: string, spec: ChartSpec, empty: string): Html {
  const hasData = spec.series.some((s) => s.values.some((v) => v !== null && v !== 0));
  return html`<figure><figcaption>${title}</figcaption>${hasData ? html`<div class="chart" id="${id}" data-chart="${JSON.stringify(spec)}"></div>` : html`<p class="note" id="${id}">${empty}</p>`}</figure>`;
}

export function overviewPage(data: OverviewData, ctx: ActionContext): Html {
  const keptEvents = data.inbox.reduce((sum, key) => sum + key.events, 0);
  return html`<h1>Overview</h1>
<section><h2>Flows by status</h2>
<table id="by-status"><tr>${FLOW_STATUSES.map((s) => html`<th>${statusBadge(s)}</th>`)}</tr>
<tr>${FLOW_STATUSES.map((s) => html`<td><a href="/flows?status=${s}" data-status="${s}">${(data.counts[s] ?? 0).toLocaleString('en')}${data.cappedStatuses.includes(s) ? '+' : ''}</a></td>`)}</tr></table>
${data.cappedStatuses.length > 0 ? html`<p class="note">Counted up to ${(10_000).toLocaleString('en')} each, so the page stays fast on any number of flows.</p>` : ''}</section>
<section><h2>Last ${String(CHART_WINDOW_HOURS)} hours</h2><div class="charts">
${chart('chart-resumes', 'Resumes per hour, by reason', data.charts.resumes, 'No resumes in this window.')}
${chart('chart-lateness', 'Timer and timeout lateness (ms after due)', data.charts.lateness, 'No timer or timeout resumes in this window.')}
${chart('chart-throughput', 'Flows created and finished per hour', data.charts.throughput, 'No flows created or finished in this window.')}
</div>${data.charts.notes.map((n) => html`<p class="note">${n}</p>`)}<p class="note" id="charts-at">Charts as of ${time(new Date(data.charts.at))}.</p></section>
<section><h2>Waiting flows by kind${data.waitingSampled ? ' (in a sample of 2,000)' : ''}</h2>
<table id="by-kind">${Object.entries(data.waitingByKind).map(([kind, n]) => html`<tr><th>${kind}</th><td>${n}</td></tr>`)}</table></section>
<section><h2>Timers due soon</h2>
${data.timers.length === 0 ? html`<p>None.</p>` : html`<table id="timers"><tr><th>flow</th><th>goal</th><th>wakes</th><th></th></tr>
${data.timers.map((f) => { const at = wakeAt(f.wait)!; return html`<tr><td>${flowLink(f)}</td><td>${f.goal}</td><td>${time(at)}</td><td>${timeLeft(at, data.now)}</td></tr>`; })}</table>`}</section>
<section><h2>Kept events</h2><p id="kept">${keptEvents} kept event${keptEvents === 1 ? '' : 's'} on ${data.inbox.length} key${data.inbox.length === 1 ? '' : 's'}</p>
${data.inbox.length === 0 ? '' : html`<table><tr><th>topic</th><th>correlation id</th><th>events</th><th>oldest</th><th>expires</th></tr>
${data.inbox.slice(0, 50).map((k) => html`<tr><td>${k.topic}</td><td>${k.correlationId}</td><td>${k.events}</td><td>${time(k.oldestAt)}</td><td>${time(k.expiresAt)}</td></tr>`)}</table>`}
${(data.hints ?? []).length === 0 ? '' : html`<h3>Near misses: kept for a key close to one flows wait on</h3><table id="near-misses"><tr><th>kept for</th><th>flows wait on</th><th>differs</th><th>flows</th></tr>
${(data.hints ?? []).map((m) => html`<tr><td>${m.kept.topic}/${m.kept.correlationId}</td><td>${m.waiting.topic}/${m.waiting.correlationId}</td><td>${m.difference === 'typo' ? `typo (${m.distance})` : `only in ${m.difference}`}</td><td>${m.flowIds.map((id) => html`<a href="/flows/${encodeURIComponent(id)}">${id}</a> `)}</td></tr>`)}</table>`}</section>
<section><h2>Dead notifications</h2>
${data.dead.length === 0 ? html`<p id="dead">None.</p>` : html`<table id="dead"><tr><th>flow</th><th>reason</th><th>attempts</th><th>last error</th><th>dead since</th></tr>
${data.dead.map((n) => html`<tr><td><a href="/flows/${encodeURIComponent(n.flowId)}">${n.flowId}</a></td><td>${n.wake.reason}</td><td>${n.attempts}</td><td class="text">${n.lastError ?? ''}</td><td>${time(n.deadAt)}</td></tr>`)}</table>`}</section>
<section><h2>Retrying notifications</h2>
${data.retrying.length === 0 ? html`<p id="retrying">None.</p>` : html`<table id="retrying"><tr><th>flow</th><th>reason</th><th>attempts</th><th>last error</th><th>next try</th></tr>
${data.retrying.map((n) => html`<tr><td><a href="/flows/${encodeURIComponent(n.flowId)}">${n.flowId}</a></td><td>${n.wake.reason}</td><td>${n.attempts}</td><td class="text">${n.lastError ?? ''}</td><td>${time(n.dueAt)} <small>${timeLeft(n.dueAt, data.now)}</small></td></tr>`)}</table>`}</section>
${ctx.readOnly ? '' : html`<section><h2>Deliver an event</h2>
<form method="post" action="/deliver" data-confirm="Deliver this event?" class="action">
<input name="topic" placeholder="topic" required> <input name="correlationId" placeholder="correlation id" required>
<input name="payload" placeholder="payload (JSON)"> ${tokenField(ctx)} <button>Deliver</button></form></section>`}`;
}

/** The flow list and its filters. */
export interface FlowListData {
  status: FlowStatus;
  owner: string;
  controller: string;
  step: string;
  goal: string;
  flows: Flow[];
  /** The query string of the next page, when there may be one. */
  next: string | undefined;
  /** The page ended at its scan window (a filter on controller, step or goal): rows examined. */
  scanned: number | undefined;
  now: number;
}

export function flowListPage(data: FlowListData): Html {
  return html`<h1>Flows</h1>
<form method="get" action="/flows" class="filters">
<label>status <select name="status">${FLOW_STATUSES.map((s) => html`<option value="${s}" ${s === data.status ? 'selected' : ''}>${s}</option>`)}</select></label>
<label>owner <input name="owner" value="${data.owner}" placeholder="agent:…:session:…"></label>
<label>controller <input name="controller" value="${data.controller}"></label>
<label>step <input name="step" value="${data.step}"></label>
<label>goal contains <input name="goal" value="${data.goal}"></label>
<button id="filter">Filter</button></form>
${data.flows.length === 0 ? html`<p id="no-flows">No flows match.</p>` : html`<table id="flows"><tr><th>flow</th><th>status</th><th>goal</th><th>step</th><th>controller</th><th>owner</th><th>wait</th><th>updated</th></tr>
${data.flows.map((f) => { const at = wakeAt(f.wait); return html`<tr data-flow="${f.id}"><td>${flowLink(f)}</td><td>${statusBadge(f.status)}</td><td class="goal">${f.goal}</td><td>${f.currentStep}</td><td>${f.controllerId}</td><td>${f.ownerSessionKey}</td><td>${describeWait(f.wait)}${at ? html` <small>${timeLeft(at, data.now)}</small>` : ''}</td><td>${time(f.updatedAt)}</td></tr>`; })}</table>`}
${data.scanned === undefined ? '' : html`<p class="note" id="scanned">${data.next === undefined ? 'Searched to the end of the list.' : `Searched ${data.scanned.toLocaleString('en')} more flows without filling the page.`}</p>`}
${data.next === undefined ? '' : html`<p><a id="next-page" href="/flows?${data.next}">${data.scanned === undefined ? 'Next page →' : 'Continue searching →'}</a></p>`}`;
}

/** Everything a flow page shows. */
export interface FlowPageData {
  flow: Flow;
  events: FlowEvent[];
  steps: FlowStep[];
  notifications: ResumeNotification[];
  now: number;
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

export function flowPage(data: FlowPageData, ctx: ActionContext): Html {
  const { flow } = data;
  const at = wakeAt(flow.wait);
  const id = encodeURIComponent(flow.id);
  const terminal = flow.status === 'finished' || flow.status === 'failed' || flow.status === 'cancelled';
  return html`<h1>Flow <code>${flow.id}</code> ${statusBadge(flow.status)}</h1>
<dl id="fields">
<dt>goal</dt><dd id="goal" class="text">${flow.goal}</dd>
<dt>status</dt><dd><span id="status">${flow.status}</span>${flow.cancelRequested && !terminal ? ' (cancel requested)' : ''}</dd>
<dt>step</dt><dd>${flow.currentStep}</dd>
<dt>controller</dt><dd>${flow.controllerId}</dd>
<dt>owner</dt><dd>${flow.ownerSessionKey}</dd>
<dt>revision</dt><dd id="revision">${flow.revision}</dd>
<dt>created</dt><dd>${time(flow.createdAt)}</dd>
<dt>updated</dt><dd>${time(flow.updatedAt)}</dd>
<dt>wait</dt><dd id="wait">${flow.wait ? html`${describeWait(flow.wait)}${at ? html` — <strong>${timeLeft(at, data.now)}</strong>` : ''}` : 'none'}</dd>
${flow.schedule ? html`<dt>schedule</dt><dd id="schedule">${describeSchedule(flow.schedule)}</dd>` : ''}
</dl>
<h2>State</h2><pre id="state" class="json">${json(flow.state)}</pre>
${ctx.readOnly || terminal ? '' : html`<section id="actions"><h2>Actions</h2>
<form method="post" action="/flows/${id}/cancel" data-confirm="Cancel this flow?" class="action">${tokenField(ctx)} <button id="cancel">Cancel</button></form>
${flow.status === 'waiting' ? html`<form method="post" action="/flows/${id}/resume" data-confirm="Resume this flow now, whatever it waits for?" class="action">
<input name="patch" placeholder="state patch (JSON object)"> ${tokenField(ctx)} <button id="resume">Resume</button></form>` : ''}
${flow.wait?.kind === 'manual' ? html`<form method="post" action="/flows/${id}/signal" data-confirm="Send this signal?" class="action">
<input name="name" placeholder="signal name" value="${flow.wait.signal ?? ''}"> <input name="payload" placeholder="payload (JSON)"> ${tokenField(ctx)} <button id="signal">Signal</button></form>` : ''}
${flow.wait?.kind === 'external_event' ? html`<form method="post" action="/deliver" data-confirm="Deliver this event?" class="action">
<input type="hidden" name="topic" value="${flow.wait.topic}"><input type="hidden" name="correlationId" value="${flow.wait.correlationId}">
<input name="payload" placeholder="payload (JSON)"> ${tokenField(ctx)} <button id="deliver">Deliver event</button></form>` : ''}
</section>`}
<h2>Timeline</h2>
<ol id="timeline">${data.events.map((e) => html`<li data-kind="${e.kind}"><time>${time(e.at)}</time> <strong>${e.kind}</strong>${Object.keys(e.payload).length === 0 ? '' : html`<pre class="json">${json(e.payload)}</pre>`}</li>`)}</ol>
${data.steps.length === 0 ? '' : html`<h2>Steps</h2><table id="steps"><tr><th>run</th><th>runtime</th><th>task</th><th>status</th><th>result</th><th>updated</th></tr>
${data.steps.map((s) => html`<tr><td>${s.runId}</td><td>${s.runtime}</td><td class="text">${s.task}</td><td>${s.status}</td><td><pre class="json">${json(s.result)}</pre></td><td>${time(s.updatedAt)}</td></tr>`)}</table>`}
<h2>Resume notifications</h2>
${data.notifications.length === 0 ? html`<p id="notifications">None queued.</p>` : html`<table id="notifications"><tr><th>id</th><th>reason</th><th>attempts</th><th>last error</th><th>due</th><th>dead since</th><th></th></tr>
${data.notifications.map((n) => html`<tr><td>${n.id}</td><td>${n.wake.reason}</td><td>${n.attempts}</td><td class="text">${n.lastError ?? ''}</td><td>${time(n.dueAt)}</td><td>${time(n.deadAt)}</td>
<td>${n.deadAt && !ctx.readOnly ? html`<form method="post" action="/flows/${id}/requeue" data-confirm="Re-queue this notification?" class="action"><input type="hidden" name="notificationId" value="${n.id}">${tokenField(ctx)} <button class="requeue">Re-queue</button></form>` : ''}</td></tr>`)}</table>`}`;
}

export function errorPage(message: string): Html {
  return html`<h1>Refused</h1><p id="error" class="text">${message}</p><p><a href="/">Overview</a></p>`;
}
