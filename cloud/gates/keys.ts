import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * A gate's API key: `gk_<keyId>_<secret>`. The key id (12 chars) is stored in clear to find the key;
 * the secret is 32 random bytes, stored only as its SHA-256 (a slow hash adds nothing for 256 bits
 * of randomness, and auth runs on every batch).
 */
export interface NewKey {
  keyId: string
  /** the whole key, shown once */
  key: string
  secretSha256: Buffer
}

const KEY_RE = /^gk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

export function generateKey(): NewKey {
  const idBytes = randomBytes(12)
  let keyId = ''
  for (const b of idBytes) keyId += ID_ALPHABET[b % ID_ALPHABET.length]
  const secret = randomBytes(32).toString('base64url')
  return { keyId, key: `gk_${keyId}_${secret}`, secretSha256: sha256(secret) }
}

/** Split a presented key into id and secret, or null when it is not shaped like a key. */
export function parseKey(key: string): { keyId: string; secret: string } | null {
  const m = KEY_RE.exec(key)
  return m?.[1] && m[2] ? { keyId: m[1], secret: m[2] } : null
}

export function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, stored: Buffer): boolean {
  const h = sha256(secret)
  return h.length === stored.length && timingSafeEqual(h, stored)
}
