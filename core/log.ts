import pino from 'pino';

/**
 * The project's structured logger. Logs go to STDERR (fd 2) so that stdout stays free for
 * command output (JSON Lines). The level is 'info' until the program sets the configured one
 * (FACEPIPE_LOG_LEVEL, read by app/config.ts) with `setLogLevel`.
 */
export const log = pino({ name: 'facepipe', level: 'info' }, pino.destination({ fd: 2, sync: true }));

export function setLogLevel(level: string): void {
  log.level = level;
}
