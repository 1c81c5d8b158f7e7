/**
 * The operator log: JSON lines (pino) on stdout. Field names are snake_case and listed in
 * docs/logging.md. Key material, nonces and tokens are never passed in; the redaction list
 * is a second line of defence.
 */
import { pino, type Level } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export function createLogger(level: LogLevel = 'info', destination: NodeJS.WritableStream = process.stdout): LogFn {
  const logger = pino({
    level,
    base: { service: 'attestd' },
    redact: { paths: ['token', 'signature', 'nonce', 'key', '*.token', '*.signature'], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }, destination);
  return (lvl, msg, fields) => logger[lvl as Level](fields ?? {}, msg);
}
