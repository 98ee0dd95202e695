// API keys: random 256-bit secrets, of which only a SHA-256 digest is ever stored.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_PREFIX = 'sk_';

/** A new key as the client will send it: `sk_` and 43 base64url characters (32 random bytes). */
export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** The digest stored and looked up (hex). */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Equal digests, compared in constant time (both are 64 hex characters). */
export function sameDigest(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
