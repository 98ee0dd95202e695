// A mock server for any OpenAPI 3.x document, on openapi-backend's mocking: requests are
// validated against the document (400 in the document's own error shape when it has
// one), and answers come from its examples, else from its schemas. `Prefer: code=404`
// and `Prefer: example=<name>` choose among the documented answers, as Prism does.
import { STATUS_CODES } from 'node:http';
import type { ErrorObject } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Context, OpenAPIBackend } from 'openapi-backend';
import { isJsonMediaType, METHODS } from '../conformance/spec-model.js';
import { loadOpenApiBackend } from '../openapi-backend.js';
import { answerPreflight, installMockCors, withMockCors } from './cors.js';
import { parsePrefer } from './prefer.js';
import { mockHeaders } from './response-headers.js';
import { schemaBodies } from './schema-bodies.js';

type Operation = Context['operation'];
type MediaObject = { example?: unknown; examples?: Record<string, { value?: unknown }>; schema?: unknown };

/** Where a field is, named as the server (Fastify) names it: `params/sessionId`, `querystring/limit`. */
const LOCATIONS: Record<string, string> = { requestBody: 'body', query: 'querystring', params: 'params', path: 'params', headers: 'headers' };

/** Ajv errors as one sentence naming the fields: `body/timeoutConfig/timeoutMinutes must be >= 5`. */
function describeErrors(errors: ErrorObject[] | null | undefined, operation: Operation): string {
  const sentences = (errors ?? []).map((error) => {
    const [, location = '', ...rest] = error.instancePath.split('/');
    const field = [LOCATIONS[location] ?? location, ...rest].join('/') || 'request';
    const { missingProperty, additionalProperty } = error.params as { missingProperty?: string; additionalProperty?: string };
    if (field === 'request' && missingProperty === 'requestBody') {
      const types = Object.keys((operation.requestBody as { content?: object } | undefined)?.content ?? {});
      return `body is required (${types.join(', ')})`;
    }
    if (missingProperty) return `${field}/${missingProperty} is required`;
    if (additionalProperty) return `${field}/${additionalProperty} is not allowed`;
    if (error.keyword === 'discriminator') {
      const { tag, tagValue } = error.params as { tag: string; tagValue?: unknown };
      return typeof tagValue === 'string' ? `${field}/${tag} "${tagValue}" names no branch of its oneOf` : `${field}/${tag} must be a string naming a branch of its oneOf`;
    }
    return `${field} ${error.message ?? 'is invalid'}`;
  });
  return [...new Set(sentences)].slice(0, 5).join('; ') || 'the request does not match the document';
}

function mediaTypeOf(content: Record<string, MediaObject>): string | undefined {
  return 'application/json' in content ? 'application/json' : Object.keys(content)[0];
}

/** The message a validation failure puts into the document's error shape. */
function withMessage(body: unknown, message: string): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  const copy = structuredClone(body) as Record<string, any>;
  if (copy.error && typeof copy.error === 'object') copy.error.details = message; // { error: { code, message, details } }
  else if ('detail' in copy) copy.detail = message; // RFC 9457 problem details
  else if ('message' in copy || 'code' in copy) copy.message = message;
  return copy;
}

const isObject = (value: unknown): value is Record<string, any> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * `body` with the code of `other`, an answer in the same shape: in `{ error: { code,
 * message } }` its message too (`withMessage` wrote the problem into `details`); in
 * `{ code, message }` the message is the problem's.
 */
function withCodeOf(body: unknown, other: unknown): unknown {
  if (!isObject(body) || !isObject(other)) return body;
  const copy = structuredClone(body);
  if (isObject(copy.error) && isObject(other.error) && 'code' in other.error) {
    copy.error.code = other.error.code;
    if ('message' in other.error) copy.error.message = other.error.message;
    return copy;
  }
  if ('code' in copy && 'code' in other) return { ...copy, code: other.code };
  return body;
}

/**
 * RFC 9457 problem details carry the HTTP status in `status`; a `title` made up by the
 * generator (no example) becomes the status's phrase ("Not Found", not "string"). Unless
 * the document's schema says otherwise (`fits` false: a title or status it pins).
 */
function asProblem(body: unknown, mediaType: string | undefined, status: number, fromExample: boolean, fits: (body: unknown) => boolean): unknown {
  if (!mediaType || !/^application\/problem\+json/i.test(mediaType) || !body || typeof body !== 'object' || Array.isArray(body)) return body;
  const problem = body as Record<string, unknown>;
  const changes = [
    typeof problem.status === 'number' ? { status } : undefined,
    !fromExample && typeof problem.title === 'string' && STATUS_CODES[status] ? { title: STATUS_CODES[status] } : undefined,
  ];
  // Each change kept where the schema takes it.
  return changes.reduce<Record<string, unknown>>((result, change) => (change && fits({ ...result, ...change }) ? { ...result, ...change } : result), problem);
}

/** A frame's field value on one line (a line break would end the field). */
const oneLine = (value: string | number) => String(value).replace(/[\r\n]+/g, ' ');

/**
 * A mocked stream of Server-Sent Events: each item of the mocked body one frame, then the
 * end. As event streams usually frame them: `id:` the item's `id` (else its position),
 * `event:` its `type` when it has one (what an EventSource listener is registered for).
 */
function eventFrames(body: unknown): string {
  return (Array.isArray(body) ? body : [body])
    .map((item, i) => {
      const fields = (item && typeof item === 'object' ? item : {}) as { id?: unknown; type?: unknown };
      const id = typeof fields.id === 'string' || typeof fields.id === 'number' ? fields.id : i + 1;
      const event = typeof fields.type === 'string' ? `event: ${oneLine(fields.type)}\n` : '';
      return `id: ${oneLine(id)}\n${event}data: ${JSON.stringify(item)}\n\n`;
    })
    .join('');
}

function send(reply: FastifyReply, status: number, mediaType: string | undefined, body: unknown) {
  reply.code(status);
  if (body === undefined) return reply.send();
  if (mediaType === 'text/event-stream') return reply.type(mediaType).send(typeof body === 'string' ? body : eventFrames(body));
  if (typeof body === 'string' && mediaType && !/json/.test(mediaType)) return reply.type(mediaType).send(body);
  return reply.type(mediaType && /json/.test(mediaType) ? mediaType : 'application/json').send(JSON.stringify(body));
}

/** Why a request's body cannot go to `operation` (its media type is not one the operation documents); undefined when it can. */
function unsupportedMediaType(operation: Operation | undefined, contentType: string | undefined, body: unknown): string | undefined {
  const content = (operation?.requestBody as { content?: Record<string, unknown> } | undefined)?.content;
  if (!operation || !content || body === undefined) return undefined;
  const received = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const accepted = Object.keys(content).map((type) => type.toLowerCase());
  const takes = accepted.some((type) => type === received || type === '*/*' || (type.endsWith('/*') && received.startsWith(type.slice(0, -1))));
  return takes ? undefined : `content-type ${received || '(none)'} is not accepted by ${operation.operationId} (accepted: ${accepted.join(', ')})`;
}

export interface MockServerOptions {
  specPath: string;
}

export async function createMockServer({ specPath }: MockServerOptions): Promise<FastifyInstance> {
  const api: OpenAPIBackend = await loadOpenApiBackend(specPath);
  const bodies = schemaBodies(specPath);
  const headers = mockHeaders(specPath);

  /**
   * The documented answer for `status` (or the default one), from an example or the
   * schema; in the first media type of `accept` it documents, else JSON, else its first.
   */
  function mock(operation: Operation, status: string | undefined, example?: string, accept?: string) {
    // The response documenting `code`: its own, else its range's (2XX), else the default one, as openapi-backend looks it up.
    const contentOf = (code: string) =>
      ([code, `${code[0]}XX`, 'default'].map((key) => operation.responses?.[key]).find((response) => response !== undefined) as { content?: Record<string, MediaObject> } | undefined)?.content;
    const acceptable = (accept ?? '').split(',').map((type) => type.split(';')[0]!.trim().toLowerCase());
    let generated;
    try {
      // openapi-backend looks the code up as a key of `responses`, so '4XX' and 'default' work too.
      generated = api.mockResponseForOperation(operation.operationId!, { code: status as unknown as number, example });
      const content = contentOf(status ?? String(generated.status)) ?? {};
      const wanted = acceptable.find((type) => type in content);
      if (wanted && wanted !== mediaTypeOf(content)) generated = api.mockResponseForOperation(operation.operationId!, { code: status as unknown as number, example, mediaType: wanted });
    } catch (error) {
      // Its generator follows a schema that holds itself without end.
      if (!(error instanceof RangeError)) throw error;
      const message = `${operation.operationId}: no example for this answer, and its schema holds itself (a body cannot be generated from it): add an example to the document`;
      return { status: 500, mediaType: 'application/json', body: { message }, failed: true, fromExample: false };
    }
    const { status: chosen, mock: body } = generated;
    const content = (status ? contentOf(status) : undefined) ?? contentOf(String(chosen));
    const mediaType = content ? (acceptable.find((type) => type in content) ?? mediaTypeOf(content)) : undefined;
    const media = mediaType ? content![mediaType] : undefined;
    if (!media) return { status: chosen, mediaType, body: undefined, failed: false, fromExample: false };
    const fromExample = example !== undefined || media.example !== undefined || media.examples !== undefined;
    const fixed = fromExample || !(/json/.test(mediaType!) || mediaType === 'text/event-stream') ? body : bodies.fixed(operation.operationId!, chosen, mediaType!, body);
    return { status: chosen, mediaType, body: fixed, failed: false, fromExample };
  }

  /**
   * A refusal in the document's own error shape for `status` (its response, its range's, or
   * `default`), else `{ message }`. A 4xx the operation does not document that way (a 413,
   * say) is answered as its 400, a status it does document (the message says what it is);
   * unless the operation only lends its shape (`lent`: a request no operation takes, or a
   * `Prefer:` the mock cannot honour, whose 422 is the mock's own answer, not the API's).
   */
  function refuse(reply: FastifyReply, operation: Operation | undefined, refused: number, message: string, extra: Record<string, unknown> = {}, lent = false) {
    const shapes = [String(refused), `${String(refused)[0]}XX`, 'default', ...(refused >= 400 && refused < 500 ? ['400'] : [])];
    const documenting = shapes.find((key) => operation?.responses?.[key]);
    if (!operation || !documenting) return send(reply, refused, 'application/json', { message, ...extra });
    const status = documenting === '400' && !lent ? 400 : refused;
    const answer = mock(operation, documenting);
    reply.headers(headers.for(operation.operationId!, status, reply.request.headers));
    const fits = (body: unknown) => bodies.fits(operation.operationId!, status, answer.mediaType ?? '', body);
    let body = withMessage(answer.body, message);
    // A Prefer the mock cannot honour is no error of the API: its 422's example code and
    // message ("Idempotency key was used with a different request") would mislead a client.
    // It carries those of the operation's 400 instead (the document's "invalid request"),
    // where the 422's schema takes them.
    if (lent && refused === 422 && documenting !== '400' && operation.responses?.['400']) {
      const generic = withCodeOf(body, mock(operation, '400').body);
      if (fits(generic)) body = generic;
    }
    return send(reply, status, answer.mediaType, asProblem(body, answer.mediaType, status, answer.fromExample, fits));
  }

  // A mock has no keys to check: every security scheme accepts any credentials or none
  // (a 401 is asked for like any other status, with `Prefer: code=401`).
  const schemes = Object.keys((api.definition.components?.securitySchemes ?? {}) as Record<string, unknown>);
  for (const scheme of schemes) api.registerSecurityHandler(scheme, () => true);

  /**
   * For a request no operation takes: the operation whose answer for that status is the
   * document's response named for it (`components.responses.NotFound` for a 404), else the
   * first operation documenting the status, else its range (4XX), a default answer, a 400.
   * Its error shape (and example) is the answer's.
   */
  const operations = api.getOperations();
  const componentResponses = (api.definition.components?.responses ?? {}) as Record<string, unknown>;
  const namedFor = (status: number) => {
    const component = componentResponses[(STATUS_CODES[status] ?? '').replace(/[^A-Za-z]/g, '')];
    const shape = component === undefined ? undefined : JSON.stringify(component);
    return shape === undefined ? undefined : operations.find((operation) => JSON.stringify(operation.responses?.[String(status)]) === shape);
  };
  const shapeFor = (status: number) =>
    namedFor(status) ??
    [[String(status), `${String(status)[0]}XX`], ['default'], ['400']]
      .map((keys) => operations.find((operation) => keys.some((key) => operation.responses?.[key])))
      .find((operation) => operation !== undefined);
  // A method its path does not take is a 405 where the document has an answer for one (a
  // 405, 4XX or default), else a 404 as for a path no operation has, as many servers answer.
  const answersMethodNotAllowed = operations.some((operation) => ['405', '4XX', 'default'].some((key) => operation.responses?.[key]));
  const noOperation = (c: Context, reply: FastifyReply) => refuse(reply, shapeFor(404), 404, `${c.request.method.toUpperCase()} ${c.request.path} does not exist`, {}, true);

  api.register({
    notFound: noOperation,
    methodNotAllowed: (c: Context, reply: FastifyReply) => {
      if (!answersMethodNotAllowed) return noOperation(c, reply);
      // A 405 says which methods the path takes (RFC 9110, 15.5.6); HEAD where it takes GET.
      const taken = METHODS.filter((method) => api.matchOperation({ method, path: c.request.path, headers: {} }) !== undefined).map((method) => method.toUpperCase());
      reply.header('allow', [...taken, ...(taken.includes('GET') ? ['HEAD'] : [])].join(', '));
      return refuse(reply, shapeFor(405), 405, `${c.request.method.toUpperCase()} is not allowed on ${c.request.path}`, {}, true);
    },
    validationFail: (c: Context, reply: FastifyReply) => refuse(reply, c.operation, 400, describeErrors(c.validation.errors, c.operation), { errors: c.validation.errors }),
    notImplemented: (c: Context, reply: FastifyReply) => {
      const preference = parsePrefer(c.request.headers.prefer as string | undefined);
      const documented = Object.keys(c.operation.responses ?? {});
      if (preference.code !== undefined && !/^[1-5]\d\d$/.test(preference.code)) {
        return refuse(reply, c.operation, 422, `Prefer: code=${preference.code} is not a status code`, {}, true);
      }
      // The response that documents the code: its own, else its range (`4XX`), else `default`.
      const code = preference.code;
      const documenting = code === undefined ? undefined : [code, `${code[0]}XX`, 'default'].find((key) => documented.includes(key));
      if (code !== undefined && documenting === undefined) {
        return refuse(reply, c.operation, 422, `Prefer: code=${code} is not documented for ${c.operation.operationId} (documented: ${documented.join(', ')})`, {}, true);
      }
      const mocked = mock(c.operation, documenting, preference.example, c.request.headers.accept as string | undefined);
      const answer = code === undefined || mocked.failed ? mocked : { ...mocked, status: Number(code) };
      if (preference.example !== undefined) {
        const response = c.operation.responses?.[documenting ?? String(answer.status)] as { content?: Record<string, MediaObject> } | undefined;
        const examples = answer.mediaType ? response?.content?.[answer.mediaType]?.examples : undefined;
        if (!examples?.[preference.example]) {
          const named = Object.keys(examples ?? {}).join(', ') || 'none';
          return refuse(reply, c.operation, 422, `Prefer: example=${preference.example} is not an example of ${c.operation.operationId} ${answer.status} (examples: ${named})`, {}, true);
        }
      }
      if (!answer.failed) reply.headers(headers.for(c.operation.operationId!, answer.status, reply.request.headers));
      const fits = (body: unknown) => bodies.fits(c.operation.operationId!, answer.status, answer.mediaType ?? '', body);
      return send(reply, answer.status, answer.mediaType, asProblem(answer.body, answer.mediaType, answer.status, answer.fromExample, fits));
    },
  });

  // What the router refuses before any route (a malformed percent-encoding) in the document's error shape too.
  const app = Fastify({
    logger: false,
    frameworkErrors: (error, request, reply) => answerPreflight(request, reply) || refuse(withMockCors(reply, request.headers.origin), shapeFor(400), 400, error.message, {}, true),
  });
  installMockCors(app);
  app.removeAllContentTypeParsers();
  // Every body reaches openapi-backend, which judges it against the document: JSON is
  // parsed first, and JSON that does not parse is refused here, saying where.
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (text === '') return done(null, undefined);
    if (!isJsonMediaType(request.headers['content-type'] ?? '')) return done(null, text);
    try {
      const value: unknown = JSON.parse(text);
      // openapi-backend parses a body that is not an object once more: a JSON string goes as
      // its text, parsed once there (`"{…}"` is a string, not the object it spells).
      done(null, typeof value === 'string' ? text : value);
    } catch (error) {
      done(Object.assign(new Error(`body is not valid JSON: ${(error as Error).message}`), { statusCode: 400 }));
    }
  });
  // Fastify's own refusals, a body over its limit (413) above all: in the document's error
  // shape for the status, as every other refusal, not Fastify's.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    const [path = '/'] = request.url.split('?');
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const headers = request.headers as Record<string, string>;
    const matched = api.matchOperation({ method, path, headers });
    // No operation takes it: answered as without its body (a 404, or a 405), which was not judged.
    if (!matched) return api.handleRequest({ method, path, headers }, reply);
    const message = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `body must be at most ${app.initialConfig.bodyLimit} bytes` : error.message;
    return refuse(reply, matched, status, message);
  });
  app.all('*', async (request, reply) => {
    const [path = '/', query = ''] = request.url.split('?');
    const headers = request.headers as Record<string, string>;
    // HEAD is answered as GET (Node sends no body); query parameters the operation does
    // not document are ignored, as a server does (a cache-buster such as `?_=1`).
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const matched = api.matchOperation({ method, path, headers });
    const documented = new Set(((matched?.parameters ?? []) as Array<{ in?: string; name?: string }>).filter((p) => p.in === 'query').map((p) => p.name));
    const kept = new URLSearchParams([...new URLSearchParams(query)].filter(([name]) => documented.has(name))).toString();
    const incoming = { method, path, query: kept, headers, body: request.body };
    // A body of a media type the operation does not take: 415, as a server would (openapi-backend
    // validates a body only against the types it documents, and let any other through).
    const refused = unsupportedMediaType(matched, request.headers['content-type'], request.body);
    if (refused) return refuse(reply, matched, 415, refused);
    return api.handleRequest(incoming, reply);
  });
  return app;
}
