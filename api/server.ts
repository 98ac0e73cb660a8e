/**
 * The lookup service: a fastify instance with auth, error mapping, metrics, OpenAPI and the routes.
 * Routes take their dependencies from the one RouteContext (api/context.ts) built here; they never
 * import this file, so there is no circle.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import AjvCompiler from '@fastify/ajv-compiler';
import type { FaceDatabase } from '../indexers/types.ts';
import type { IdentityService } from '../service/identityService.ts';
import type { ClusterParams } from '../clustering/params.ts';
import type { Analyzer } from '../pipeline/analyze.ts';
import { installAuth } from './auth.ts';
import { errorBodySchema, installErrorHandling } from './errors.ts';
import { createMetrics, instrument, type ServiceMetrics } from './metrics.ts';
import { DEFAULT_LIMITS, type RouteContext, type ServerLimits } from './context.ts';
import { registerSearchRoutes } from './routes/search.ts';
import { registerIdentityRoutes } from './routes/identities.ts';
import { registerFaceRoutes } from './routes/faces.ts';
import { registerSystemRoutes } from './routes/system.ts';
import { registerPeopleRoutes } from './routes/people.ts';
import { registerWebApp } from './web/app.ts';
import { UserActions } from '../service/userActions.ts';

export { DEFAULT_LIMITS, type ServerLimits } from './context.ts';

export interface ServerDeps {
  db: FaceDatabase;
  identities: IdentityService;
  params: ClusterParams;
  /** detector + embedder for search by image; without it that route answers 503 */
  analyzer?: Analyzer;
  /** bearer token; when set, every route but /healthz requires it */
  token?: string;
  limits?: Partial<ServerLimits>;
  /** fastify logger option (default: off; the CLI passes its pino instance) */
  logger?: boolean | object;
  metrics?: ServiceMetrics;
}

const validatorPool = AjvCompiler();
const AJV_OPTIONS = { removeAdditional: false, allErrors: false } as const;

/**
 * Validators: a JSON body is taken as sent (no coercion: `null` or `true` is not a number, `["id"]`
 * is not a string), while querystring, params and headers, which arrive as text, are coerced to
 * the types their schemas declare (`?k=5` is the integer 5).
 */
function strictBodyValidators(
  externalSchemas: Parameters<typeof validatorPool>[0],
): ReturnType<typeof validatorPool> {
  const strict = validatorPool(externalSchemas, { customOptions: { ...AJV_OPTIONS, coerceTypes: false } });
  const textual = validatorPool(externalSchemas, { customOptions: { ...AJV_OPTIONS, coerceTypes: 'array' } });
  return (route) => (route.httpPart === 'body' ? strict(route) : textual(route));
}

/** Builds the lookup service (not listening yet): `await app.listen({ port: 0 })` in tests. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: 1024 * 1024,
    schemaController: { compilersFactory: { buildValidator: strictBodyValidators } },
  });
  const metrics = deps.metrics ?? createMetrics(deps.db);
  // The API speaks JSON and multipart only: any other body is a 415, not a schema error.
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app);
  const web = await registerWebApp(app, { token: deps.token });
  installAuth(app, deps.token, web.sessions);
  instrument(app, metrics);
  await app.register(multipart, {
    limits: { fileSize: limits.maxUploadBytes, files: 1, fields: 10, parts: 11 },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'facepipe lookup service',
        description: 'Who is this face? Search faces and identities; correct and erase identities.',
        version: '0.1.0',
      },
      components: deps.token ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {},
      security: deps.token ? [{ bearer: [] }] : [],
    },
  });
  app.addSchema(errorBodySchema);
  const ctx: RouteContext = {
    db: deps.db,
    identities: deps.identities,
    params: deps.params,
    analyzer: deps.analyzer,
    limits,
    metrics,
    actions: new UserActions(deps.db, deps.identities),
  };
  registerSystemRoutes(app, ctx);
  registerSearchRoutes(app, ctx);
  registerIdentityRoutes(app, ctx);
  registerFaceRoutes(app, ctx);
  registerPeopleRoutes(app, ctx);
  web.registerPages(ctx);
  return app;
}
