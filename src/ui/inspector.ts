import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { FlowError } from '../runtime/errors.js';
import { openTaskflow, type Taskflow } from '../runtime/taskflow.js';
import { inspectorApp } from './app.js';
import { LiveRevision } from './live.js';
import { isLoopbackHost } from './security.js';
import { hostCheck } from './host-guard.js';
import type { KeyHints } from './waits-page.js';
import { parseDuration, type Duration } from '../runtime/duration.js';

/** Options of {@link startInspector}: a running runtime, or a database to open. */
export interface InspectorOptions {
  /** A runtime the host already opened (the inspector does not close it). */
  taskflow?: Taskflow;
  /** A SQLite path or `postgres://` URL to open when `taskflow` is absent (closed by `close`). */
  database?: string;
  /** Default 0: any free port. */
  port?: number;
  /**
   * Default `127.0.0.1`. Any other address needs an explicit `token`, and then every request needs it.
   * Also a name the inspector answers to: see {@link InspectorOptions.allowedHosts}.
   */
  host?: string;
  /**
   * More names the inspector answers to in the `Host` header, such as the name a
   * reverse proxy forwards (`['ops.example.internal']`; no port, any case).
   * Always answered to: loopback (`localhost`, `127.0.0.0/8`, `[::1]`, with any
   * port) and `host`; when `host` is `0.0.0.0` or `::`, this machine's name and
   * the addresses of its interfaces. Any other `Host` is refused with 403 before
   * any page, asset or live stream is served: a page on another site whose name
   * was made to resolve to this machine (DNS rebinding) reads nothing.
   */
  allowedHosts?: readonly string[];
  /** Turns the actions off. */
  readOnly?: boolean;
  /** The action token; default a random one. */
  token?: string;
  /**
   * Hints about event keys (such as near misses between kept events and waits),
   * shown on the waits page beside each key. Default: the runtime's near-miss
   * hints (`tf.inboxHints()`): a kept key and a waiting key that differ only in
   * case, whitespace or a typo.
   */
  keyHints?: KeyHints;
  /** How often the overview's charts are recomputed at most. Default `30s`; `0`: on every request. */
  chartRefresh?: Duration;
}

/** A listening inspector. */
export interface Inspector {
  /** Such as `http://127.0.0.1:4500/`. */
  readonly url: string;
  /** Opening it sets the token cookie, so the page's actions work. */
  readonly loginUrl: string;
  readonly token: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts the web inspector: an overview, the flow list, a page per flow, live
 * updates and the operator's actions (cancel, signal, resume, deliver an event,
 * re-queue a dead notification), each through the runtime calls the CLI makes.
 * Answers only to a loopback `Host`, `host` and `allowedHosts` (DNS rebinding).
 * Refuses (`invalid_input`) a non-loopback `host` without an explicit `token`,
 * and an `allowedHosts` entry that is no host name.
 */
export async function startInspector(options: InspectorOptions): Promise<Inspector> {
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  if (!loopback && (options.token === undefined || options.token.length < 16)) {
    throw new FlowError('invalid_input', `the inspector will not listen on ${host} without a token of at least 16 characters (or use 127.0.0.1)`);
  }
  if (options.token !== undefined && options.token.trim() === '') throw new FlowError('invalid_input', 'the token must not be empty');
  if (!options.taskflow && options.database === undefined) throw new FlowError('invalid_input', 'startInspector needs taskflow or database');
  const hosts = hostCheck({ listensOn: host, ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}) });
  const chartRefreshMs = options.chartRefresh === undefined ? undefined : parseDuration(options.chartRefresh, 'chartRefresh');
  const token = options.token ?? randomBytes(18).toString('base64url');
  const owned = options.taskflow ? undefined : await openTaskflow({ database: options.database! });
  const tf = options.taskflow ?? owned!;
  const live = new LiveRevision(tf);
  const app = inspectorApp({ tf, live, token, readOnly: options.readOnly === true, tokenForReads: !loopback, hosts, ...(options.keyHints ? { keyHints: options.keyHints } : {}), ...(chartRefreshMs === undefined ? {} : { chartRefreshMs }) });
  let server: ServerType;
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: host }, (info) => resolve(info));
    server.once('error', reject);
  });
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${address.port}/`;
  let closed = false;
  return {
    url,
    loginUrl: `${url}login?token=${encodeURIComponent(token)}`,
    token,
    port: address.port,
    async close() {
      if (closed) return;
      closed = true;
      live.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
      await owned?.close();
    },
  };
}
