import type { Entry } from './entry.js'
import type { RedisTier } from './redis-tier.js'

/** A tag's version counter in Redis (under the cache's key prefix). */
const tagKey = (tag: string) => `tag:${tag}`

/**
 * Versioned tags: invalidating a tag bumps its version (one INCR in Redis, nothing scanned), and an
 * entry written under an older version of one of its tags is outdated. Redis' counter is the
 * truth; this node keeps the versions it knows, raised by the bus when another node bumps one.
 */
export class TagVersions {
  private readonly known = new Map<string, number>()

  constructor(private readonly tier: RedisTier) {}

  /** An entry's tags current (true), outdated (false) or not known locally yet (undefined: ask Redis). */
  knownCurrent(entry: Entry): boolean | undefined {
    if (!entry.tv) return true
    for (const tag in entry.tv) {
      const version = this.known.get(tag)
      if (version === undefined) return undefined
      if (version !== entry.tv[tag]) return false
    }
    return true
  }

  /** Whether an entry's tags are current, asking Redis for the versions this node does not know. */
  async current(entry: Entry): Promise<boolean> {
    if (!entry.tv) return true
    for (const [tag, version] of Object.entries(entry.tv))
      if ((await this.version(tag)) !== version) return false
    return true
  }

  /** The current versions of `tags` (undefined when there are none). */
  async snapshot(tags: readonly string[] | undefined): Promise<Record<string, number> | undefined> {
    if (!tags || tags.length === 0) return undefined
    const versions: Record<string, number> = {}
    for (const tag of tags) versions[tag] = await this.version(tag)
    return versions
  }

  /** Bump each tag's version; the new versions, for the other nodes. */
  async bump(tags: readonly string[]): Promise<Record<string, number>> {
    const bumped: Record<string, number> = {}
    for (const tag of tags) {
      const counted = (await this.tier.incr(tagKey(tag))) ?? (this.known.get(tag) ?? 0) + 1
      // without Redis the local version goes up; with it, Redis' counter is the truth
      bumped[tag] = Math.max(counted, (this.known.get(tag) ?? 0) + 1)
      this.known.set(tag, bumped[tag])
    }
    return bumped
  }

  /** Versions another node bumped to (from the bus): a version only goes up. */
  heard(versions: Record<string, unknown>): void {
    for (const [tag, version] of Object.entries(versions))
      if (typeof version === 'number' && version > (this.known.get(tag) ?? -1)) this.known.set(tag, version)
  }

  /** Forget every known version (they are read from Redis again). */
  clear(): void {
    this.known.clear()
  }

  private async version(tag: string): Promise<number> {
    const known = this.known.get(tag)
    if (known !== undefined) return known
    const raw = await this.tier.get(tagKey(tag))
    const version = Number(raw ?? 0)
    this.known.set(tag, version)
    return version
  }
}
