import { Hono, type Context } from 'hono';
import { setCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import { FlowError } from '../runtime/errors.js';
import { isFlowStatus, isTerminal, type FlowStatus } from '../runtime/flow.js';
import type { Taskflow } from '../runtime/taskflow.js';
import type { JsonObject } from '../runtime/flow.js';
import type { InspectQueries } from '../runtime/store/inspect.js';
import { INSPECTOR_CSS, INSPECTOR_JS, uplotAssets } from './assets.js';
import { overviewCharts, type OverviewCharts } from './charts.js';
import { nearMissHints } from './near-miss-hints.js';
import { waitsPage, WAITS_LIMIT, type KeyHints } from './waits-page.js';
import type { LiveRevision } from './live.js';
import { errorPage, flowListPage, flowPage, layout, overviewPage, type ActionContext } from './pages.js';
import { TOKEN_COOKIE, requestToken, sameOriginOnly, sameToken } from './security.js';
import { hostCheck, hostGuard, type HostCheck } from './host-guard.js';

const PAGE = 50;
/** Rows a filtered flow list examines per request at most (controller, step, goal text). */
export const SEARCH_WINDOW = 5_000;
/** Waiting flows read to count them by kind. */
const KIND_SAMPLE = 2_000;
/** Flows of a status counted at most on the overview (shown as "10,000+" beyond). */
export const STATUS_COUNT_CAP = 10_000;
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** What the inspector's routes work on. */
export interface InspectorAppOptions {
  tf: Taskflow;
  live: LiveRevision;
  token: string;
  readOnly: boolean;
  /** Every request (reads too) needs the token: the inspector listens beyond this machine. */
  tokenForReads: boolean;
  /** Hints about event keys on the waits page, when the runtime offers them. */
  keyHints?: KeyHints;
  /** The overview's charts are recomputed at most this often (ms); default 30 s, 0 on every request. */
  chartRefreshMs?: number;
  /** The Host names answered to, checked before any route (DNS rebinding); default loopback only. */
  hosts?: HostCheck;
}

/** Default of {@link InspectorAppOptions.chartRefreshMs}: hourly charts need no fresher figures, and a page refreshing live several times a second reads them once. */
export const CHART_REFRESH_MS = 30_000;

/** The inspector's routes: pages, the live stream, and the actions (each a runtime call the CLI makes too). */
export function inspectorApp(options: InspectorAppOptions): Hono {
  const { tf, live, token, readOnly } = options;
  const app = new Hono();
  const authorised = (c: Context) => sameToken(requestToken(c), token);
  const queries: InspectQueries | undefined = tf.store.inspect?.();
  const inspect = (): InspectQueries => {
    if (!queries) throw new FlowError('invalid_input', `this ${tf.store.dialect} store offers no inspector queries`);
    return queries;
  };

  app.use('*', async (c, next) => {
    await next();
    c.header('content-security-policy', CSP);
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'same-origin');
  });
  app.use('*', hostGuard(options.hosts ?? hostCheck()));
  app.use('*', sameOriginOnly());

  // The link printed at start: sets the token as a strict, HTTP-only cookie.
  app.get('/login', (c) => {
    if (!sameToken(c.req.query('token'), token)) return c.html(layout('Refused', errorPage('wrong or missing token')), 403);
    setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/' });
    return c.redirect('/', 303);
  });
  if (options.tokenForReads) {
    app.use('*', async (c, next) => {
      if (!authorised(c)) return c.text('this inspector needs its token: open the login link it printed', 401);
      await next();
    });
  }

  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.get('/assets/inspector.js', (c) => c.body(INSPECTOR_JS, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/assets/uplot.js', (c) => c.body(uplotAssets().js, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=3600' }));
  app.get('/assets/uplot.css', (c) => c.body(uplotAssets().css, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'max-age=3600' }));
  app.get('/assets/inspector.css', (c) => c.body(INSPECTOR_CSS, 200, { 'content-type': 'text/css; charset=utf-8' }));

  const actionContext = (c: Context): ActionContext => ({ readOnly, authorised: authorised(c) });

  const chartRefresh = options.chartRefreshMs ?? CHART_REFRESH_MS;
  let chartCache: { at: number; charts: Promise<OverviewCharts> } | undefined;
  const chartsAt = (q: InspectQueries, now: number): Promise<OverviewCharts> => {
    if (chartCache && now >= chartCache.at && now - chartCache.at < chartRefresh) return chartCache.charts;
    const fresh = overviewCharts(q, now);
    chartCache = { at: now, charts: fresh };
    fresh.catch(() => (chartCache = undefined));
    return fresh;
  };

  app.get('/', async (c) => {
    const q = inspect();
    const now = tf.clock.now();
    const [counts, kinds, timers, inbox, dead, retrying, charts, hints] = await Promise.all([
      q.countByStatus(STATUS_COUNT_CAP),
      q.waitingKinds(KIND_SAMPLE),
      tf.store.listWaking(20),
      tf.store.listInbox(),
      tf.store.listDeadNotifications(50),
      q.retryingNotifications(50),
      chartsAt(q, now),
      tf.inboxHints({ limit: 50 }),
    ]);
    const data = { counts: counts.counts, cappedStatuses: counts.capped, waitingByKind: kinds.kinds, waitingSampled: kinds.capped, timers, inbox, dead, retrying, charts, hints, now };
    return c.html(layout('Overview', overviewPage(data, actionContext(c)), c.req.query('done')));
  });

  app.get('/flows', async (c) => {
    const statusText = c.req.query('status') ?? 'waiting';
    const status: FlowStatus = isFlowStatus(statusText) ? statusText : 'waiting';
    const field = (name: string) => (c.req.query(name) ?? '').trim();
    const [owner, controller, step, goal] = [field('owner'), field('controller'), field('step'), field('goal')];
    const afterAt = Number(c.req.query('afterAt'));
    const afterId = c.req.query('afterId');
    const after = Number.isFinite(afterAt) && afterId ? { updatedAt: afterAt, id: afterId } : undefined;
    const page = await inspect().searchFlows({
      status,
      limit: PAGE,
      scanLimit: SEARCH_WINDOW,
      ...(owner === '' ? {} : { owner }),
      ...(controller === '' ? {} : { controller }),
      ...(step === '' ? {} : { step }),
      ...(goal === '' ? {} : { goalText: goal }),
      ...(after ? { after } : {}),
    });
    const filters = { status, owner, controller, step, goal };
    const next = page.next ? new URLSearchParams({ ...filters, afterAt: String(page.next.updatedAt), afterId: page.next.id }).toString() : undefined;
    const scanned = page.windowEnded && (controller !== '' || step !== '' || goal !== '') ? page.scanned : undefined;
    return c.html(layout('Flows', flowListPage({ ...filters, flows: page.flows, next, scanned, now: tf.clock.now() })));
  });

  const defaultHints = nearMissHints(tf);
  app.get('/waits', async (c) => {
    const [timers, eventWaits, inbox] = await Promise.all([tf.store.listWaking(WAITS_LIMIT), inspect().eventWaits(WAITS_LIMIT), tf.store.listInbox()]);
    const found = await (options.keyHints ?? defaultHints)([...eventWaits, ...inbox.slice(0, WAITS_LIMIT)]);
    // The hints column shows only when there is something to say.
    const hints = found.size > 0 ? found : undefined;
    return c.html(layout('Waits', waitsPage({ timers, eventWaits, inbox, hints, now: tf.clock.now() })));
  });

  app.get('/flows/:id', async (c) => {
    const flow = await tf.store.getFlow(c.req.param('id'));
    if (!flow) return c.html(layout('Not found', errorPage(`no flow ${c.req.param('id')}`)), 404);
    const [events, steps, notifications] = await Promise.all([
      tf.store.listEvents(flow.id),
      tf.store.listSteps(flow.id),
      tf.store.listNotifications([flow.id]),
    ]);
    return c.html(layout(`Flow ${flow.id}`, flowPage({ flow, events, steps, notifications, now: tf.clock.now() }, actionContext(c)), c.req.query('done')));
  });

  app.get('/revision', (c) => c.json({ revision: live.current }));

  app.get('/live', (c) =>
    streamSSE(c, async (stream) => {
      let wake: (() => void) | undefined;
      let pending = false;
      const unsubscribe = live.subscribe(() => {
        pending = true;
        wake?.();
      });
      stream.onAbort(() => {
        unsubscribe();
        wake?.();
      });
      await stream.writeSSE({ event: 'hello', data: String(live.current) });
      while (!stream.aborted) {
        if (!pending) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        if (stream.aborted) break;
        pending = false;
        await stream.writeSSE({ event: 'change', data: String(live.current) });
        // At most a few refreshes a second, however fast flows move.
        await stream.sleep(200);
      }
      unsubscribe();
    }),
  );

  // Actions: token, same origin (above), not read-only; each is the CLI's runtime call.
  const action = (run: (c: Context, form: Record<string, string>) => Promise<{ to: string; done: string }>) => async (c: Context) => {
    if (readOnly) return c.html(layout('Refused', errorPage('this inspector is read-only')), 403);
    const body = await c.req.parseBody();
    const form: Record<string, string> = {};
    for (const [key, value] of Object.entries(body)) if (typeof value === 'string') form[key] = value;
    if (!authorised(c) && !sameToken(form.token, token)) return c.html(layout('Refused', errorPage('this action needs the token the inspector printed at start')), 401);
    try {
      const { to, done } = await run(c, form);
      live.bump();
      return c.redirect(`${to}?done=${encodeURIComponent(done)}`, 303);
    } catch (error) {
      if (FlowError.isInstance(error)) return c.html(layout('Refused', errorPage(`${error.code}: ${error.message}`)), 409);
      throw error;
    }
  };
  const flowPath = (id: string) => `/flows/${encodeURIComponent(id)}`;
  const payloadOf = (form: Record<string, string>): { payload?: unknown } => {
    const text = (form.payload ?? '').trim();
    if (text === '') return {};
    try {
      return { payload: JSON.parse(text) as unknown };
    } catch {
      throw new FlowError('invalid_input', 'the payload is not valid JSON');
    }
  };

  app.post('/flows/:id/cancel', action(async (c) => {
    // As `taskflow cancel`: the request first (a waiting flow is cancelled by it), then force.
    let flow = await tf.manager.requestCancel(c.req.param('id')!);
    if (!isTerminal(flow.status)) flow = await tf.manager.cancel(flow.id);
    return { to: flowPath(flow.id), done: `flow ${flow.id} is ${flow.status}` };
  }));
  app.post('/flows/:id/resume', action(async (c, form) => {
    // As `taskflow resume <id> [--patch json]`: a manual resume, the patch merged into the state.
    const text = (form.patch ?? '').trim();
    let patch: JsonObject | undefined;
    if (text !== '') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new FlowError('invalid_input', 'the state patch is not valid JSON');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new FlowError('invalid_input', 'the state patch must be a JSON object');
      patch = parsed as JsonObject;
    }
    const flow = await tf.manager.resume(c.req.param('id')!, patch);
    return { to: flowPath(flow.id), done: `resumed flow ${flow.id}: it is ${flow.status}` };
  }));
  app.post('/flows/:id/signal', action(async (c, form) => {
    const name = (form.name ?? '').trim();
    const flow = await tf.engine.signal(c.req.param('id')!, { ...(name === '' ? {} : { signal: name }), ...payloadOf(form) });
    return { to: flowPath(flow.id), done: `signalled flow ${flow.id}: it is ${flow.status}` };
  }));
  app.post('/flows/:id/requeue', action(async (c, form) => {
    const id = Number.parseInt(form.notificationId ?? '', 10);
    const count = await tf.engine.requeueDead(c.req.param('id')!, Number.isSafeInteger(id) ? { notificationId: id } : {});
    return { to: flowPath(c.req.param('id')!), done: `re-queued ${count} notification${count === 1 ? '' : 's'}` };
  }));
  app.post('/deliver', action(async (_c, form) => {
    const topic = (form.topic ?? '').trim();
    const correlationId = (form.correlationId ?? '').trim();
    if (topic === '' || correlationId === '') throw new FlowError('invalid_input', 'an event needs a topic and a correlation id');
    const result = await tf.engine.deliver({ topic, correlationId, ...payloadOf(form) });
    const done = result.resumed.length > 0 ? `resumed ${result.resumed.join(', ')}` : result.kept ? 'no flow waits on it: kept in the inbox' : result.duplicate ? 'duplicate: nothing happened' : 'dropped: the inbox is full';
    return { to: result.resumed.length === 1 ? flowPath(result.resumed[0]!) : '/', done: `event ${topic}/${correlationId}: ${done}` };
  }));

  app.onError((error, c) => c.html(layout('Error', errorPage(error instanceof Error ? error.message : String(error))), 500));
  return app;
}
