import { hostname as machineName, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import type { MiddlewareHandler } from 'hono';
import { FlowError } from '../runtime/errors.js';
import { isLoopbackHost } from './security.js';

/**
 * The Host names an inspector answers to, against DNS rebinding: a page on
 * `attacker.example`, its name resolved to 127.0.0.1, is same-origin to itself
 * and could read every page; its requests carry `Host: attacker.example`.
 */
export type HostCheck = (hostname: string) => boolean;

/** Addresses that mean "every interface of this machine" when listened on. */
const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** A Host header's shape: a name or an IPv4 address, or a bracketed IPv6 address, then an optional port. */
const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::\d{1,5})?$/i;

/**
 * Lower case, without IPv6 brackets, IPv6 in its canonical text (`0:0::1` is
 * `::1`); undefined for text that is no host name.
 */
export function normalHostname(name: string): string | undefined {
  const bare = name.trim().replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === '') return undefined;
  if (isIP(bare) === 6) return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  return /^[a-z0-9._-]+$/.test(bare) ? bare : undefined;
}

/** What {@link hostCheck} is built from. */
export interface HostCheckOptions {
  /** The address or name the server listens on; a wildcard (`0.0.0.0`, `::`) stands for every address of this machine. Default: loopback only. */
  listensOn?: string;
  /** More names to answer to, such as the name a reverse proxy forwards (compared without port, case-insensitively). */
  allowedHosts?: readonly string[];
}

/**
 * The names an inspector answers to: loopback (`localhost`, `127.0.0.0/8`,
 * `::1`) always; the address or name it listens on; on a wildcard address,
 * this machine's name and the addresses of its interfaces (read when a request
 * names one not yet seen, so an address gained later is served); and
 * `allowedHosts`. Refuses (`invalid_input`) an allowed host that is no host name.
 */
export function hostCheck(options: HostCheckOptions = {}): HostCheck {
  const named = new Set<string>();
  const allowed: unknown = options.allowedHosts ?? [];
  if (!Array.isArray(allowed)) throw new FlowError('invalid_input', 'allowedHosts must be a list of host names');
  for (const name of allowed as unknown[]) {
    const normal = typeof name === 'string' ? normalHostname(name) : undefined;
    if (normal === undefined) throw new FlowError('invalid_input', `allowedHosts: ${JSON.stringify(name)} is not a host name`);
    named.add(normal);
  }
  const listensOn = options.listensOn === undefined ? undefined : normalHostname(options.listensOn) ?? options.listensOn;
  const everyInterface = listensOn !== undefined && WILDCARDS.has(listensOn);
  if (listensOn !== undefined && !everyInterface) named.add(listensOn);
  if (everyInterface) named.add(machineName().toLowerCase());
  return (hostname) => {
    if (isLoopbackHost(hostname) || named.has(hostname)) return true;
    return everyInterface && isIP(hostname) !== 0 && interfaceAddresses().has(hostname);
  };
}

function interfaceAddresses(): Set<string> {
  const found = new Set<string>();
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      const normal = normalHostname(address.address);
      if (normal !== undefined) found.add(normal);
    }
  }
  return found;
}

/**
 * Refuses (403, plain text) a request whose `Host` header, or the authority of
 * an absolute request target, names a host `allowed` does not accept, before
 * any route runs. A request with no Host (HTTP/1.0, or a host's in-process
 * `app.request('/')`) is judged by its URL's host.
 */
export function hostGuard(allowed: HostCheck): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('host');
    const fromHeader = header === undefined ? undefined : HOST_HEADER.test(header) ? normalHostname(header.replace(/:\d+$/, '')) : undefined;
    let fromUrl: string | undefined;
    try {
      fromUrl = normalHostname(new URL(c.req.url).hostname);
    } catch {
      fromUrl = undefined;
    }
    const ok = (header === undefined || (fromHeader !== undefined && allowed(fromHeader))) && fromUrl !== undefined && allowed(fromUrl);
    if (!ok) return c.text('refused: this inspector answers only to localhost and the address it listens on', 403);
    await next();
  };
}
