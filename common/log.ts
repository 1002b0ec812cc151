/**
 * Structured JSON logging (pino). One root logger per process, a child per part
 * (`{ part: 'relay' }`). Levels: error = a person must act; warn = degraded and
 * self-healing; info = lifecycle; debug = per message. Payloads, keys, tokens and
 * passwords are never logged; the redact list is a second line of defence.
 */
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;

export interface LoggerOptions {
  level?: string;
  /** Where lines go; defaults to stderr so that stdout stays for machine-readable output. */
  destination?: DestinationStream;
}

const REDACT = [
  'password',
  'token',
  'key',
  'privateKey',
  'passphrase',
  '*.password',
  '*.token',
  '*.privateKey',
  '*.passphrase',
  'payload',
  '*.payload',
];

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that drops everything: for tests that do not inspect logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
