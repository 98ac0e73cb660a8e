import { log } from '../core/log.ts';

/** What the database needs from a logger (tests pass a recorder). */
export interface IndexLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * The index's logger: the project's pino logger (stderr), tagged with the component. It forwards
 * to `log` at each call, so a level the program sets after start-up (core/log.ts) applies.
 */
export const indexLog: IndexLogger = {
  info: (obj, msg) => log.info({ component: 'index', ...obj }, msg),
  warn: (obj, msg) => log.warn({ component: 'index', ...obj }, msg),
};
