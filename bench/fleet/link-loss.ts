/**
 * The fleet benchmark's last phase: gates whose network dies silently (the victims, behind the
 * blackholing proxy) are seen offline by the broker's keep-alive and the will, or sooner by the
 * monitor's own silence rule.
 */
import type { ChildProcess } from 'node:child_process'
import mqtt from 'mqtt'
import {
  gateIdOf,
  KEEPALIVE_S,
  MQTT_URL,
  once,
  sleep,
  type ToWorker,
  VICTIMS,
  WILL_DELAY_S,
} from './settings.js'

/** The figures of the phase, seconds each. */
export interface LinkLoss {
  /** the limit: 1.5 keep-alive intervals plus the will delay */
  limitS: number
  /** victims seen offline in the monitor */
  seen: number
  /** cut to offline in the monitor */
  delays: number[]
  /** the gate's last packet to offline in the monitor */
  fromLastPacket: number[]
  /** the gate's last packet to the broker's will */
  keepAliveDelays: number[]
  /** cut to the will */
  brokerDelays: number[]
  /** how far ahead of the will the monitor was (to the poll's 200 ms resolution) */
  aheadOfWill: number[]
  /** offline by the monitor's silence rule, and by the will */
  bySilence: number
  byWill: number
}

/**
 * Has worker `w0` cut its victims' link, then polls the monitor at `serviceUrl` (with the ops
 * token's `auth`) until each is offline there and its will has come.
 */
export async function silentLinkLoss(
  w0: ChildProcess,
  prefix: string,
  serviceUrl: string,
  auth: { headers: Record<string, string> },
): Promise<LinkLoss> {
  // a plain client sees when the broker gives up on each gate (its will on the wire)
  const willAt = new Map<string, number>()
  const watcher = await mqtt.connectAsync(MQTT_URL, { clientId: `bench-will-${prefix}` })
  watcher.on('message', (_topic, payload) => {
    if (payload.length === 0) return
    const s = JSON.parse(payload.toString('utf8')) as { gateId: string; state: string; reason?: string }
    if (s.state === 'offline' && s.reason === 'will' && !willAt.has(s.gateId))
      willAt.set(s.gateId, Date.now())
  })
  await watcher.subscribeAsync(
    Array.from({ length: VICTIMS }, (_, k) => `gates/${gateIdOf(prefix, k)}/status`),
    { qos: 1 },
  )
  await sleep(500) // the retained "online" statuses arrive first
  w0.send({ type: 'cut' } satisfies ToWorker)
  const cutMsg = await once<{ type: 'cut'; at: Record<string, number>; lastIn: Record<string, number> }>(
    w0,
    'cut',
  )
  const cutAt = cutMsg.at
  const detected = new Map<string, number>()
  const detectedBy = new Map<string, string | null>()
  const limitS = 1.5 * KEEPALIVE_S + WILL_DELAY_S
  const until = Date.now() + (limitS + 20) * 1000
  const cuts = Object.keys(cutAt).length
  // until every cut gate is offline in the monitor, and its will (for reference) has come
  while ((detected.size < cuts || willAt.size < cuts) && Date.now() < until) {
    await Promise.all(
      Object.keys(cutAt)
        .filter((g) => !detected.has(g))
        .map(async (g) => {
          const r = await fetch(`${serviceUrl}/v1/fleet/${g}`, auth)
          const s = (await r.json()) as { state: string; reason: string | null }
          if (s.state === 'offline') {
            detected.set(g, Date.now() - (cutAt[g] as number))
            detectedBy.set(g, s.reason)
          }
        }),
    )
    await sleep(200)
  }
  await watcher.endAsync()
  const delays = [...detected.values()].map((ms) => ms / 1000)
  const brokerDelays = [...willAt].map(([g, t]) => (t - (cutAt[g] as number)) / 1000)
  // the keep-alive clock runs from the last packet the broker received from the gate
  const keepAliveDelays = [...willAt].flatMap(([g, t]) => {
    const last = cutMsg.lastIn[g]
    return last === undefined ? [] : [(t - last) / 1000]
  })
  const fromLastPacket = [...detected].flatMap(([g, d]) => {
    const last = cutMsg.lastIn[g]
    return last === undefined ? [] : [((cutAt[g] as number) + d - last) / 1000]
  })
  // how the monitor knew: its own silence rule (1.5 announced keep-alives) or the broker's will
  const bySilence = [...detectedBy.values()].filter((r) => r === 'silent').length
  const byWill = [...detectedBy.values()].filter((r) => r === 'will').length
  // how far ahead of the will the monitor was (to the poll's 200 ms resolution)
  const aheadOfWill = [...detected].flatMap(([g, d]) => {
    const w = willAt.get(g)
    return w === undefined ? [] : [(w - ((cutAt[g] as number) + d)) / 1000]
  })
  return {
    limitS,
    seen: detected.size,
    delays,
    fromLastPacket,
    keepAliveDelays,
    brokerDelays,
    aheadOfWill,
    bySilence,
    byWill,
  }
}
