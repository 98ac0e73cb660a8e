import type { Logger } from 'pino';
import { log } from '../core/log.ts';

/** The index's logger: the project's pino logger (STDERR), tagged with the component. */
export const indexLog: Logger = log.child({ component: 'index' });

/** What the database needs from a logger (tests pass a recorder). */
export interface IndexLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}
