import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { loadConfig, type NotifyConfig } from '../src/config/configuration';

/** Delivery settings for specs: the relay driven by hand, loopback receivers allowed, a short schedule. */
export function notifyConfig(overrides: Partial<NotifyConfig> = {}): NotifyConfig {
  return {
    ...loadConfig({ NODE_ENV: 'test' }).notify,
    relayEnabled: false,
    allowPrivateNetworks: true,
    secretsKey: randomBytes(32),
    retrySchedule: [0.2, 0.2, 0.2],
    retryJitter: 0,
    timeoutMs: 2000,
    leaseSeconds: 30,
    ...overrides,
  };
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  body?: string | Buffer;
}

/** A real HTTP receiver on 127.0.0.1 that records every request and answers as `reply` says. */
export class Receiver {
  readonly received: Received[] = [];
  reply: (request: Received, index: number) => Reply = () => ({ status: 204 });
  /** Requests in progress per webhook-id, and the most ever seen at once for one id. */
  private readonly inFlight = new Map<string, number>();
  maxConcurrentPerId = 0;
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  connections = 0;
  private constructor(private readonly server: http.Server, readonly url: string) {
    server.on('connection', () => (this.connections += 1));
  }

  static async start(): Promise<Receiver> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const receiver = new Receiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
    server.on('request', (req, res) => receiver.handle(req, res));
    return receiver;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() };
      const id = String(req.headers['webhook-id'] ?? '');
      const now = (this.inFlight.get(id) ?? 0) + 1;
      this.inFlight.set(id, now);
      this.maxConcurrentPerId = Math.max(this.maxConcurrentPerId, now);
      const index = this.received.push(request) - 1;
      const reply = this.reply(request, index);
      setTimeout(() => {
        this.inFlight.set(id, (this.inFlight.get(id) ?? 1) - 1);
        if (res.destroyed) return;
        res.writeHead(reply.status, reply.headers ?? {});
        res.end(reply.body ?? '');
      }, reply.delayMs ?? 0);
    });
  }

  /** Stops listening: connections are refused until resume(). */
  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  resume(): Promise<void> {
    const port = Number(new URL(this.url).port);
    return new Promise((resolve) => this.server.listen(port, '127.0.0.1', resolve));
  }

  ids(): string[] {
    return this.received.map((request) => String(request.headers['webhook-id']));
  }

  close(): Promise<void> {
    return this.server.listening ? this.stop() : Promise.resolve();
  }
}

/** A real SMTP server on 127.0.0.1 (no TLS, no auth) collecting parsed messages. */
export class MailSink {
  readonly messages: ParsedMail[] = [];
  private constructor(private readonly server: SMTPServer, readonly url: string) {}

  static async start(): Promise<MailSink> {
    let sink: MailSink | undefined;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, _session, callback) {
        simpleParser(stream)
          .then((mail) => {
            sink!.messages.push(mail);
            callback();
          })
          .catch(callback);
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = ((server as unknown as { server: http.Server }).server.address() as AddressInfo).port;
    sink = new MailSink(server, `smtp://127.0.0.1:${port}`);
    return sink;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
