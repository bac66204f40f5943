import winston from 'winston';

export type Logger = winston.Logger;
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/**
 * JSON logs, one object a line, with the resource, store and reason as fields.
 * Callers pass names and reasons only: values never reach a logger.
 */
export function createLogger(level: LogLevel = 'info', stream?: NodeJS.WritableStream): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      winston.format.json(),
    ),
    defaultMeta: { component: 'secretsync' },
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
}

/** The message of an error, for logs and conditions (our errors never carry values). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
