import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.ts';
import { followOtherWriters } from '../search.ts';
import { objectOf } from './responses.ts';

export function registerSystemRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['system'],
        summary: 'Liveness: the store and index answer (no token needed)',
        security: [],
        response: {
          200: objectOf({
            status: { type: 'string' },
            modelId: { type: 'string' },
            indexSize: { type: 'integer' },
            identities: { type: 'integer' },
            searchByImage: { type: 'boolean' },
          }),
        },
      },
    },
    async () => {
      followOtherWriters(ctx.db);
      return {
        status: 'ok',
        modelId: ctx.db.modelId,
        indexSize: ctx.db.size(),
        identities: ctx.db.counts().identities,
        searchByImage: ctx.analyzer !== undefined,
      };
    },
  );

  app.get(
    '/metrics',
    { schema: { tags: ['system'], summary: 'Prometheus metrics (text exposition format)' } },
    async (_request, reply) => {
      const body = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(body);
    },
  );

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
