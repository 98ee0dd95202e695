import { ApiError } from '../errors.js';

export const BODY_LIMIT_BYTES = 1024 * 1024;
const METADATA_LIMIT_BYTES = 10 * 1024;
/** Longer path parameters are refused by the router (404) before reaching a handler. */
export const MAX_PARAM_LENGTH = 500;
const DETAILS_LIMIT_CHARS = 300;
/**
 * A page of messages ends with the message that brings it to these characters of JSON (the
 * spec says so): 100 messages at their documented maxima were 7.4 MB a page, and 30 such
 * pages at once ran a 128 MB heap out (X19).
 */
export const MESSAGE_PAGE_CHARS = 1024 * 1024;

/** Free-form JSON objects (metadata, settings) are bounded by their serialized size. */
export function assertSerializedSize(value: unknown, field: string, limit = METADATA_LIMIT_BYTES): void {
  let bytes: number;
  try {
    bytes = Buffer.byteLength(JSON.stringify(value));
  } catch {
    throw new ApiError('INVALID_REQUEST', `${field} is nested too deeply to store`);
  }
  if (bytes > limit) throw new ApiError('INVALID_REQUEST', `${field} must be at most ${limit} bytes serialized (got ${bytes})`);
}

/** Client input quoted in an error is cut short: an error never echoes a large input back. */
export function clip(text: string, max = DETAILS_LIMIT_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
