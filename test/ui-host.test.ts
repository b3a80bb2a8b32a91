import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { FlowError } from '../src/index.js';
import { startInspector, type Inspector } from '../src/ui/index.js';
import { CLI_BIN } from './support/cli-run.js';
import { newFlow, openTestTaskflow } from './support/taskflow.js';
import { until } from './support/until.js';

/**
 * DNS rebinding: a page on attacker.example, its name made to resolve to
 * 127.0.0.1, is same-origin to itself; its requests reach the inspector with
 * `Host: attacker.example`. The inspector answers only to the names it serves.
 */

interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/** One HTTP/1.1 request written by hand on a socket, so the Host header is exactly what a browser would send. */
function rawRequest(port: number, host: string, target = '/', extraHeaders = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const split = text.indexOf('\r\n\r\n');
      const head = text.slice(0, split);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), head, body: text.slice(split + 4) });
    });
    socket.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nAccept: */*\r\n${extraHeaders}Connection: close\r\n\r\n`);
  });
}

/** A waiting flow whose id and goal would show on every page that leaked. */
async function inspectorWithAFlow(options: { host?: string; token?: string; allowedHosts?: string[] } = {}) {
  const tf = await openTestTaskflow();
  const flow = await tf.manager.createManaged({ ...newFlow, goal: 'pay invoice SECRET-7731' });
  const inspector = await startInspector({ taskflow: tf, ...options });
  return { tf, flow, inspector };
}

async function closing<T>(inspector: Inspector, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } finally {
    await inspector.close();
  }
}

describe('the inspector answers only to the hosts it serves', () => {
  it('refuses Host: attacker.example, with or without the port, on pages, assets and the live stream, with no flow data', async () => {
    const { flow, inspector } = await inspectorWithAFlow();
    await closing(inspector, async () => {
      const targets = ['/', '/flows?status=created', `/flows/${flow.id}`, '/waits', '/revision', '/live', '/assets/inspector.js', '/assets/uplot.js', `/login?token=${inspector.token}`];
      for (const host of ['attacker.example', `attacker.example:${inspector.port}`]) {
        for (const target of targets) {
          const response = await rawRequest(inspector.port, host, target);
          expect(response.status, `${host} ${target}`).toBe(403);
          expect(response.head.toLowerCase()).toContain('content-type: text/plain');
          expect(response.head.toLowerCase()).not.toContain('set-cookie');
          expect(response.body).toContain('refused');
          expect(response.body).not.toContain(flow.id);
          expect(response.body).not.toContain('SECRET-7731');
        }
      }
    });
  });

  it('serves localhost, the 127/8 range and [::1], with or without the port', async () => {
    const { flow, inspector } = await inspectorWithAFlow();
    await closing(inspector, async () => {
      const port = inspector.port;
      for (const host of ['localhost', `localhost:${port}`, 'LOCALHOST', '127.0.0.1', `127.0.0.1:${port}`, `127.1.2.3:${port}`, '[::1]', `[::1]:${port}`]) {
        const response = await rawRequest(port, host, `/flows/${flow.id}`);
        expect(response.status, host).toBe(200);
        expect(response.body).toContain('SECRET-7731');
      }
    });
  });

  it('refuses a name that only starts like a loopback one', async () => {
    const { inspector } = await inspectorWithAFlow();
    await closing(inspector, async () => {
      for (const host of ['localhost.attacker.example', '127.0.0.1.attacker.example', 'localhost@attacker.example', '[::1].attacker.example', '']) {
        expect((await rawRequest(inspector.port, host)).status, host).not.toBe(200);
      }
    });
  });

  it('judges an absolute request target by its own host too', async () => {
    const { inspector } = await inspectorWithAFlow();
    await closing(inspector, async () => {
      const response = await rawRequest(inspector.port, `127.0.0.1:${inspector.port}`, `http://attacker.example:${inspector.port}/`);
      expect(response.status).toBe(403);
      expect(response.body).not.toContain('Flows by status');
    });
  });

  it('answers to allowedHosts, in any case and with any port, and to nothing else', async () => {
    const { inspector } = await inspectorWithAFlow({ allowedHosts: ['Ops.Example.Internal'] });
    await closing(inspector, async () => {
      expect((await rawRequest(inspector.port, `ops.example.internal:${inspector.port}`)).status).toBe(200);
      expect((await rawRequest(inspector.port, 'OPS.example.internal')).status).toBe(200);
      expect((await rawRequest(inspector.port, 'other.example.internal')).status).toBe(403);
    });
  });

  it('on every interface (0.0.0.0), answers to this machine\'s name and addresses, and still refuses attacker.example', async () => {
    const token = 'a-long-operator-token-123';
    const { inspector } = await inspectorWithAFlow({ host: '0.0.0.0', token });
    await closing(inspector, async () => {
      const request = (host: string) => rawRequest(inspector.port, host, '/', `X-Taskflow-Token: ${token}\r\n`);
      const address = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
      for (const host of [hostname(), ...(address ? [address, `${address}:${inspector.port}`] : [])]) {
        expect((await request(host)).status, host).toBe(200);
      }
      const refused = await request('attacker.example');
      expect(refused.status).toBe(403);
      expect(refused.body).not.toContain('Flows by status');
    });
  });

  it.each([
    ['an entry that is no host name', ['ops.example/path']],
    ['an entry that is no string', [42]],
    ['a single name instead of a list', 'ops.example'],
  ])('refuses allowedHosts with %s, before opening anything', async (_what, allowedHosts) => {
    const refusal = await startInspector({ database: '/nonexistent/dir/never-opened.db', allowedHosts: allowedHosts as string[] }).catch((error: unknown) => error);
    expect(FlowError.isInstance(refusal) && refusal.code).toBe('invalid_input');
  });

  it('taskflow ui --allowed-hosts answers to the names given and refuses attacker.example', async () => {
    const tf = await openTestTaskflow();
    const child = spawn(process.execPath, [CLI_BIN, 'ui', '--db', tf.path, '--port', '0', '--allowed-hosts', 'ops.example.internal, tf.example.internal'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await until(() => /inspector at \S+/.test(out), 20_000);
      const port = Number(new URL(/inspector at (\S+)/.exec(out)![1]!).port);
      expect((await rawRequest(port, 'tf.example.internal')).status).toBe(200);
      expect((await rawRequest(port, `attacker.example:${port}`)).status).toBe(403);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
