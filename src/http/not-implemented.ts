// What a handler stub written by `npm run generate` does until it is implemented:
// answer 501 NOT_IMPLEMENTED. The stubs are remembered, so a test can list them.
import { ApiError } from '../errors.js';
import type { Handler, OperationId } from './operation-types.js';

const stubs = new WeakSet<object>();

export function notImplemented<K extends OperationId>(operationId: K): Handler<K> {
  const handler: Handler<K> = async () => {
    throw new ApiError('NOT_IMPLEMENTED', `${operationId} is in the spec but not implemented yet`);
  };
  stubs.add(handler);
  return handler;
}

export function isNotImplemented(handler: unknown): boolean {
  return typeof handler === 'function' && stubs.has(handler);
}
