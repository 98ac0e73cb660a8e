/**
 * Builders for the response schemas of the OpenAPI description. fastify also serialises each
 * answer with its schema, so only the properties named here are sent; no `required` lists on
 * purpose (a response schema describes, the handlers' types guarantee).
 */

export function objectOf<P extends Record<string, object>>(properties: P): { type: 'object'; properties: P } {
  return { type: 'object', properties };
}

export function arrayOf<I extends object>(items: I): { type: 'array'; items: I } {
  return { type: 'array', items };
}
