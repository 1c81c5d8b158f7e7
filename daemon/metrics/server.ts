/**
 * The metrics endpoint: Prometheus text format on GET /metrics, nothing else. It listens on a
 * loopback TCP address or a Unix socket path only, and is off unless configured.
 */
import http from 'node:http';
import { AttestdError } from '../base/errors.js';
import type { Metrics } from './metrics.js';

export type MetricsListen = { host: string; port: number } | { path: string };

/** "127.0.0.1:9464", "[::1]:9464" or "unix:/run/attestd/metrics.sock". Non-loopback hosts are refused. */
export function parseMetricsListen(s: string): MetricsListen {
  if (s.startsWith('unix:/')) return { path: s.slice(5) };
  const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new AttestdError('INVALID_ARGUMENT', `--metrics takes 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/PATH, not ${s}`);
  }
  return { host: m[1] === '[::1]' ? '::1' : m[1]!, port };
}

export async function serveMetrics(metrics: Metrics, listen: MetricsListen): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/metrics/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
    }, () => res.writeHead(500).end());
  });
  server.headersTimeout = 5000;
  server.requestTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in listen) server.listen(listen.path, resolve);
    else server.listen(listen.port, listen.host, resolve);
  });
  return server;
}
