import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';

/** The cookie that carries the action token once the operator opened the login link. */
export const TOKEN_COOKIE = 'taskflow_token';
/** The header a script may send the token in instead. */
export const TOKEN_HEADER = 'x-taskflow-token';

/** Whether `host` names this machine only (actions and reads never leave it). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Compares two tokens in constant time. */
export function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Refuses a request another site made: a browser sends `Sec-Fetch-Site` (and
 * `Origin` on a POST); anything but this origin (or a typed address) is 403.
 */
export function sameOriginOnly(): MiddlewareHandler {
  return async (c, next) => {
    const site = c.req.header('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return c.text('refused: the request came from another site', 403);
    }
    const origin = c.req.header('origin');
    if (origin !== undefined && c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const host = c.req.header('host');
      let originHost: string | undefined;
      try {
        originHost = new URL(origin).host;
      } catch {
        originHost = undefined;
      }
      if (host === undefined || originHost !== host) return c.text('refused: the request came from another origin', 403);
    }
    await next();
  };
}

/** The token a request carries: header, cookie or (for a form post) the `token` field read by the caller. */
export function requestToken(c: Parameters<MiddlewareHandler>[0]): string | undefined {
  return c.req.header(TOKEN_HEADER) ?? getCookie(c, TOKEN_COOKIE);
}
