/**
 * What every route gets: the data dir's database and identity service, the clustering parameters,
 * the analyzer (search by image), the limits and the metrics. The server builds one RouteContext
 * and hands it to each route module; routes import this file, never the server.
 */
import type { FaceDatabase } from '../indexers/types.ts';
import type { IdentityService } from '../service/identityService.ts';
import type { ClusterParams } from '../clustering/params.ts';
import type { Analyzer } from '../pipeline/analyze.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { UserActions } from '../service/userActions.ts';

export interface ServerLimits {
  /** largest accepted upload, bytes (default 10 MiB) */
  maxUploadBytes: number;
  /** largest accepted image, width × height (default 40 MP): a small file can decode to a huge bitmap */
  maxPixels: number;
  /** largest k a search may ask for (default 100): a search blocks the event loop while it runs */
  maxK: number;
  /**
   * searches by image analysed at once (default 4); more get 503 with Retry-After at once instead
   * of queueing behind the detector until their clients time out
   */
  maxImageSearches: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxUploadBytes: 10 * 1024 * 1024,
  maxPixels: 40_000_000,
  maxK: 100,
  maxImageSearches: 4,
};

export interface RouteContext {
  db: FaceDatabase;
  identities: IdentityService;
  params: ClusterParams;
  analyzer?: Analyzer;
  limits: ServerLimits;
  metrics: ServiceMetrics;
  /** user corrections, recorded for undo (the people view and the correction routes) */
  actions: UserActions;
}

/** Standard error responses for the OpenAPI description. */
export function errorResponses(...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(statuses.map((s) => [s, { $ref: 'Error#' }]));
}
