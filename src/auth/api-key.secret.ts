import { createHash, randomBytes } from 'node:crypto';

/** Every key this service issues starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const API_KEY_PREFIX = 'rcb_';
const KEY_BYTES = 32;
/** `rcb_` + 8 characters: enough to tell keys apart in a list, far too little to guess the rest. */
const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 8;
const ISSUED_KEY = /^rcb_[A-Za-z0-9_-]{43}$/;

/** A new key: 32 random bytes (256 bits), base64url, with the recognisable prefix. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(KEY_BYTES).toString('base64url');
}

/**
 * SHA-256, hex. A fast hash is the right tool here: the keys are 256-bit random secrets, so a
 * stolen hash cannot be brute-forced, and a slow password hash (bcrypt, argon2) would only add
 * tens of milliseconds to every key lookup. Slow hashes are for low-entropy, human-chosen secrets.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_PREFIX_LENGTH);
}

/** Whether a presented string has the shape of a key this service issued (saves a lookup on junk). */
export function looksLikeIssuedKey(candidate: string): boolean {
  return ISSUED_KEY.test(candidate);
}
