import pino from 'pino';

/**
 * The project's structured logger. Logs go to STDERR (fd 2) so that stdout stays free for
 * command output (JSON Lines). Level from FACEPIPE_LOG_LEVEL (default 'info').
 */
export const log = pino(
  { name: 'facepipe', level: process.env.FACEPIPE_LOG_LEVEL ?? 'info' },
  pino.destination({ fd: 2, sync: true }),
);
