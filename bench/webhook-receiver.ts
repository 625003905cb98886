import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface WebhookReceiver {
  url: string;
  /** The receiver's self-signed certificate (PEM file): the service trusts it via NODE_EXTRA_CA_CERTS. */
  certificateFile: string;
  /** POSTs answered so far. */
  received(): number;
  close(): Promise<void>;
}

/**
 * The receiver of P2w: an HTTPS server on 127.0.0.1 (production accepts only https channel URLs)
 * with a certificate made for this run by openssl, that reads each webhook body and answers 200 at
 * once, as a healthy endpoint would. It checks nothing (the specs verify signatures); it
 * only counts, so the bench can report the deliveries made while the writes were measured.
 */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-receiver-'));
  const keyFile = join(dir, 'key.pem');
  const certificateFile = join(dir, 'cert.pem');
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certificateFile,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (made.status !== 0) throw new Error(`openssl could not make the receiver's certificate: ${made.stderr}`);
  let count = 0;
  const server = createServer({ key: readFileSync(keyFile), cert: readFileSync(certificateFile) }, (request, response) => {
    request.resume();
    request.on('end', () => {
      count += 1;
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/relaycore`,
    certificateFile,
    received: () => count,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((closed) => server.close(() => closed()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
