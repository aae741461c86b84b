/**
 * @module controller/openapi
 * The OpenAPI 3.1 document at `/openapi.json`, generated from the route table (so it cannot drift
 * from what the server mounts): every path, its method, the role it needs (`x-required-role`), its
 * query parameters and the error shape.
 */
import type { Route } from './routes.js';

export function openApi(routes: Route[], version = '0.1.0'): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const p = r.path.replace(/:(\w+)/g, '{$1}');
    const params: Record<string, unknown>[] = [];
    for (const m of r.path.matchAll(/:(\w+)/g))
      params.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    for (const q of r.query ?? [])
      params.push({ name: q, in: 'query', required: false, schema: { type: 'string' } });
    const op: Record<string, unknown> = {
      summary: r.summary,
      'x-required-role': r.need,
      parameters: params,
      responses: {
        '200': { description: 'ok', content: { [r.produces ?? 'application/json']: {} } },
        ...(r.need === 'public'
          ? {}
          : {
              '401': { $ref: '#/components/responses/Error' },
              '403': { $ref: '#/components/responses/Error' },
            }),
        '400': { $ref: '#/components/responses/Error' },
        '404': { $ref: '#/components/responses/Error' },
        '409': { $ref: '#/components/responses/Error' },
        '413': { $ref: '#/components/responses/Error' },
      },
    };
    if (r.need !== 'public') op.security = [{ bearer: [] }];
    if (r.body === 'upload') op.requestBody = { required: true, content: { 'application/octet-stream': {} } };
    else if (r.body === 'json' || (r.body === undefined && r.method !== 'GET' && r.method !== 'DELETE'))
      op.requestBody = { required: false, content: { 'application/json': { schema: { type: 'object' } } } };
    (paths[p] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Chokepoint fleet controller', version, description: 'See docs/CONTROLLER.md.' },
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: {
        Error: {
          description: 'refused',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  error: {
                    type: 'object',
                    properties: {
                      code: { type: 'string' },
                      message: { type: 'string' },
                      field: { type: 'string' },
                    },
                    required: ['code', 'message'],
                  },
                },
              },
            },
          },
        },
      },
    },
  };
}
