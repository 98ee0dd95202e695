// Request and response types of each operation, taken from the generated spec types.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { operations } from '../../generated/api.js';
import type { OperationalOperationId, QueryDefaults, WebhookOperationId } from '../../generated/operation-facts.js';

export type { OperationalOperationId };

/** The API's operations: each one has a handler (openapi-typescript's `operations` holds the webhooks' too). */
export type OperationId = Exclude<keyof operations, OperationalOperationId | WebhookOperationId>;

type JsonContent<T> = T extends { content: { 'application/json': infer Body } } ? Body : never;
type Responses<K extends OperationId> = operations[K]['responses'];

export type RequestBody<K extends OperationId> = operations[K] extends { requestBody: infer R } ? JsonContent<R> : undefined;
export type PathParams<K extends OperationId> = operations[K]['parameters'] extends { path: infer P } ? P : never;
type Query<K extends OperationId> = operations[K]['parameters'] extends { query?: infer Q } ? NonNullable<Q> : never;

// Generated from the spec's defaults: the validator fills them in (useDefaults), so handlers read them as present.
type Defaulted<K extends OperationId> = K extends keyof QueryDefaults ? QueryDefaults[K] & keyof Query<K> : never;
export type QueryParams<K extends OperationId> = Query<K> & Required<Pick<Query<K>, Defaulted<K>>>;

/** The body of any response the operation documents. Failures are thrown as ApiError. */
export type ResponseBody<K extends OperationId> = {
  [S in keyof Responses<K>]: JsonContent<Responses<K>[S]>;
}[keyof Responses<K>];

export type OperationRequest<K extends OperationId> = FastifyRequest<{
  Body: RequestBody<K>;
  Params: PathParams<K>;
  Querystring: QueryParams<K>;
}>;

/** Operations whose 200 is a stream of Server-Sent Events: their handler writes the stream itself. */
type Streams<K extends OperationId> = Responses<K> extends { 200: { content: { 'text/event-stream': unknown } } } ? true : false;

/** Operations that answer JSON or, on request, a stream (sendSessionMessage with transport sse): the handler returns nothing when it streamed. */
type MayStream<K extends OperationId> = true extends { [S in keyof Responses<K>]: Responses<K>[S] extends { content: { 'text/event-stream': unknown } } ? true : false }[keyof Responses<K>] ? true : false;

export type Handler<K extends OperationId> = (
  request: OperationRequest<K>,
  reply: FastifyReply,
) => Promise<Streams<K> extends true ? void : MayStream<K> extends true ? ResponseBody<K> | undefined : ResponseBody<K>>;

/** One handler per operationId: a missing one, or one the spec does not have, is a type error. */
export type ServiceHandlers = { [K in OperationId]: Handler<K> };
