import { html } from 'hono/html';
import type { Flow } from '../runtime/flow.js';
import type { EventKey, InboxKeySummary } from '../runtime/store/contract.js';
import type { EventWaitGroup } from '../runtime/store/inspect.js';
import { flowLink, time, timeLeft, wakeAt, type Html } from './pages.js';

/** How many rows each part of the waits page shows at most (each read is bounded by it). */
export const WAITS_LIMIT = 200;

/**
 * Hints about an event key, from the runtime when it offers them (for example
 * near misses: a kept event whose key is close to a waiting flow's). The page
 * shows a hints column only when the inspector was given a source.
 */
export type KeyHints = (keys: readonly EventKey[]) => Promise<ReadonlyMap<string, readonly string[]>>;

/** The map key of an event key in {@link KeyHints}' answer. */
export const hintKey = (key: EventKey): string => JSON.stringify([key.topic, key.correlationId]);

export interface WaitsData {
  timers: Flow[];
  eventWaits: EventWaitGroup[];
  inbox: InboxKeySummary[];
  /** Present when the runtime offers hints (see {@link KeyHints}). */
  hints: ReadonlyMap<string, readonly string[]> | undefined;
  now: number;
}

/** Timers by due time, event waits by topic and key, the inbox of kept events by key. */
export function waitsPage(data: WaitsData): Html {
  const hints = data.hints;
  const hintCell = (key: EventKey) => (hints ? html`<td class="text hints">${(hints.get(hintKey(key)) ?? []).join('\n')}</td>` : '');
  return html`<h1>Waits</h1>
<section><h2>Timers and timeouts by due time</h2>
${data.timers.length === 0 ? html`<p id="wait-timers">None.</p>` : html`<table id="wait-timers"><tr><th>due</th><th></th><th>flow</th><th>kind</th><th>goal</th></tr>
${data.timers.map((f) => { const at = wakeAt(f.wait)!; return html`<tr data-flow="${f.id}"><td>${time(at)}</td><td>${timeLeft(at, data.now)}</td><td>${flowLink(f)}</td><td>${f.wait?.kind === 'timer' ? 'timer' : `${f.wait?.kind ?? ''} timeout`}</td><td class="text">${f.goal}</td></tr>`; })}</table>`}
${data.timers.length === WAITS_LIMIT ? html`<p class="note">The first ${WAITS_LIMIT} by due time.</p>` : ''}</section>
<section><h2>Event waits by topic and key</h2>
${data.eventWaits.length === 0 ? html`<p id="event-waits">None.</p>` : html`<table id="event-waits"><tr><th>topic</th><th>correlation id</th><th>waiting flows</th>${hints ? html`<th>hints</th>` : ''}</tr>
${data.eventWaits.map((g) => html`<tr><td>${g.topic}</td><td>${g.correlationId}</td><td>${g.flows}</td>${hintCell(g)}</tr>`)}</table>`}
${data.eventWaits.length === WAITS_LIMIT ? html`<p class="note">The first ${WAITS_LIMIT} keys by topic.</p>` : ''}</section>
<section><h2>Inbox: kept events by key</h2>
${data.inbox.length === 0 ? html`<p id="wait-inbox">No kept events.</p>` : html`<table id="wait-inbox"><tr><th>topic</th><th>correlation id</th><th>events</th><th>oldest</th><th>newest</th><th>expires</th>${hints ? html`<th>hints</th>` : ''}</tr>
${data.inbox.slice(0, WAITS_LIMIT).map((k) => html`<tr><td>${k.topic}</td><td>${k.correlationId}</td><td>${k.events}</td><td>${time(k.oldestAt)}</td><td>${time(k.newestAt)}</td><td>${time(k.expiresAt)} <small>${timeLeft(k.expiresAt, data.now)}</small></td>${hintCell(k)}</tr>`)}</table>`}
${data.inbox.length > WAITS_LIMIT ? html`<p class="note">${WAITS_LIMIT} of ${data.inbox.length} keys, oldest first.</p>` : ''}</section>`;
}
