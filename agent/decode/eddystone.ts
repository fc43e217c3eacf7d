/** Eddystone's 16-bit service UUID, as the sources spell service data UUIDs. */
export const EDDYSTONE_SERVICE = 'feaa'

/** Eddystone frame types. Only UID carries a participant identity. */
export const EDDYSTONE_FRAME = { uid: 0x00, url: 0x10, tlm: 0x20, eid: 0x30 } as const

/** An Eddystone-UID frame: calibrated power at 0 m, and the beacon's namespace and instance (hex). */
export interface EddystoneUidFrame {
  txPower: number
  namespace: string
  instance: string
}

/** What Eddystone service data is: a UID frame, another frame type, or broken bytes. */
export type EddystoneResult =
  | { kind: 'uid'; frame: EddystoneUidFrame }
  | { kind: 'other-frame'; frame: 'url' | 'tlm' | 'eid' | 'unknown'; type: number }
  | { kind: 'malformed'; why: string }

/** Minimum UID frame: type(1) tx(1) namespace(10) instance(6); the 2 reserved bytes are often omitted. */
export const EDDYSTONE_UID_MIN = 18
/** Longest UID frame: the minimum and the 2 reserved bytes. */
export const EDDYSTONE_UID_MAX = 20

/** Decode Eddystone service data (the bytes after the 0xFEAA UUID). Never throws. */
export function parseEddystone(data: Buffer): EddystoneResult {
  if (data.length === 0) return { kind: 'malformed', why: 'empty Eddystone service data' }
  const type = data[0] ?? -1
  if (type !== EDDYSTONE_FRAME.uid) {
    const frame =
      type === EDDYSTONE_FRAME.url
        ? 'url'
        : type === EDDYSTONE_FRAME.tlm
          ? 'tlm'
          : type === EDDYSTONE_FRAME.eid
            ? 'eid'
            : 'unknown'
    return { kind: 'other-frame', frame, type }
  }
  if (data.length < EDDYSTONE_UID_MIN || data.length > EDDYSTONE_UID_MAX) {
    return {
      kind: 'malformed',
      why: `Eddystone-UID frame is ${data.length} bytes, expected ${EDDYSTONE_UID_MIN}..${EDDYSTONE_UID_MAX}`,
    }
  }
  return {
    kind: 'uid',
    frame: {
      txPower: data.readInt8(1),
      namespace: data.toString('hex', 2, 12),
      instance: data.toString('hex', 12, 18),
    },
  }
}
