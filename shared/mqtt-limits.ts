/**
 * Size limits of the fleet's MQTT messages. The largest legitimate payload is about 1.1 kB: a
 * metrics message with every number at its longest and every string at its maximum (64-character
 * gate id and version); a status or an event is about 0.4 kB, a command or its answer a few
 * hundred bytes. The limits leave room for fifty times that, and stop a message of megabytes (an
 * MQTT packet may announce 256 MB) before a broker or the cloud holds it in memory.
 */

/** The largest payload a broker forwards and the cloud reads, bytes (Mosquitto's `message_size_limit`). */
export const FLEET_MAX_PAYLOAD_BYTES = 65_536

/**
 * The largest MQTT packet a broker accepts, bytes (Mosquitto's `max_packet_size`): the payload
 * limit and room for the topic and the headers. A client that sends a larger one is disconnected.
 */
export const MQTT_MAX_PACKET_BYTES = 131_072

/**
 * Follows the MQTT packets in the bytes a client sends (each starts with a type byte and its
 * remaining length, a variable-length integer of 1 to 4 bytes) and calls `tooBig` with the size of
 * the first packet that announces more than `maxBytes`, as soon as its header is read: the
 * connection can be closed before the rest is received. Feed it every chunk, in order.
 */
export function packetSizeWatch(maxBytes: number, tooBig: (bytes: number) => void): (chunk: Buffer) => void {
  // 0: at a packet's first byte; 1: in its remaining length; 2: in its body
  let phase = 0
  let length = 0
  let multiplier = 1
  let lengthBytes = 0
  let left = 0
  let done = false
  return (chunk) => {
    let i = 0
    while (i < chunk.length && !done) {
      if (phase === 0) {
        phase = 1
        length = 0
        multiplier = 1
        lengthBytes = 0
        i++
      } else if (phase === 1) {
        const b = chunk[i++] as number
        length += (b & 0x7f) * multiplier
        multiplier *= 128
        lengthBytes++
        if (b & 0x80) {
          // a fifth length byte is malformed: the broker's parser refuses it, nothing left to follow
          if (lengthBytes === 4) done = true
          continue
        }
        const total = 1 + lengthBytes + length
        if (total > maxBytes) {
          done = true
          tooBig(total)
          return
        }
        left = length
        phase = left === 0 ? 0 : 2
      } else {
        const n = Math.min(left, chunk.length - i)
        i += n
        left -= n
        if (left === 0) phase = 0
      }
    }
  }
}
