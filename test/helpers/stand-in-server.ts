import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A JWT-shaped access token for a client; not signed, since the stand-in servers never verify it. */
export function fakeAccessToken(clientId: string): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = { login_id: 'login-1', cid: clientId, client_id: clientId, sub: clientId, iat: now, exp: now + 3600 };
  return [part({ alg: 'none', typ: 'JWT' }), part(claims), 'sig'].join('.');
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface StandInServer {
  /** Base URL with a trailing slash, e.g. http://127.0.0.1:40123/ */
  url: string;
  close(): Promise<void>;
}

/**
 * An HTTP server on a free loopback port standing in for a Medplum server, for tests that run
 * real clients (our commands, @medplum/cli) over HTTP. A handler error answers 500.
 */
export async function startStandInServer(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>
): Promise<StandInServer> {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
