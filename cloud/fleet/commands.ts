import { randomUUID } from 'node:crypto'
import type mqtt from 'mqtt'
import { GateError } from '../../shared/errors.js'
import {
  type Command,
  type CommandResponse,
  commandResponseSchema,
  FLEET_SCHEMA_VERSION,
  fleetTopics,
  signCommand,
} from '../../shared/fleet.js'
import { FLEET_MAX_PAYLOAD_BYTES } from '../../shared/mqtt-limits.js'
import { GATE_ID_RE } from '../gates/store.js'

/**
 * Signed commands from ops to gates, and their answers. The response topic of a gate is subscribed
 * by this node only while a command to it waits (not shared: the answer must come back to the node
 * that asked).
 */
export class GateCommands {
  /** response subscriptions of the commands in flight, by topic */
  private readonly responseSubs = new Map<string, { count: number; ready: Promise<unknown> }>()

  constructor(private readonly now: () => number) {}

  /**
   * Send a signed command to a gate and wait for its answer on gates/<id>/cmd/response, at most
   * `timeoutMs` for all of it (subscribing, publishing and the answer).
   */
  async send(
    client: mqtt.MqttClient | null,
    gateId: string,
    cmd: Command['cmd'],
    params: Record<string, unknown>,
    secret: string,
    timeoutMs: number,
  ): Promise<CommandResponse> {
    // a gate id is a topic level: '+', '#' or '/' would address other gates or break the session
    if (!GATE_ID_RE.test(gateId)) throw new GateError('E_INPUT', `"${gateId}" is not a gate id`)
    if (!client?.connected) throw new Error('not connected to the MQTT broker')
    const topics = fleetTopics(gateId)
    const signed = signCommand(
      { v: FLEET_SCHEMA_VERSION, id: randomUUID(), ts: this.now(), gateId, cmd, params },
      secret,
    )
    // one deadline for all of it: subscribing, publishing (a broker that never acknowledges) and the answer
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`gate ${gateId} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      )
    })
    let onMessage: ((topic: string, payload: Buffer) => void) | undefined
    const answer = new Promise<CommandResponse>((resolve) => {
      onMessage = (topic: string, payload: Buffer) => {
        if (topic !== topics.cmdResponse || payload.length > FLEET_MAX_PAYLOAD_BYTES) return
        let body: unknown
        try {
          body = JSON.parse(payload.toString('utf8'))
        } catch {
          return
        }
        const r = commandResponseSchema.safeParse(body)
        if (r.success && r.data.id === signed.id) resolve(r.data)
      }
      client.on('message', onMessage)
    })
    const work = (async () => {
      await this.subscribeResponses(client, topics.cmdResponse)
      await client.publishAsync(topics.cmd, JSON.stringify(signed), { qos: 1 })
      return answer
    })()
    // whichever loses the race is settled later with nobody waiting: not an unhandled rejection
    work.catch(() => {})
    deadline.catch(() => {})
    try {
      return await Promise.race([work, deadline])
    } finally {
      clearTimeout(timer)
      if (onMessage) client.off('message', onMessage)
      await this.unsubscribeResponses(client, topics.cmdResponse)
    }
  }

  /**
   * Commands to one gate share its response subscription (the first subscribes, the last to finish
   * unsubscribes): one command finishing must not unsubscribe another still waiting for its answer.
   */
  private subscribeResponses(client: mqtt.MqttClient, topic: string): Promise<unknown> {
    const sub = this.responseSubs.get(topic)
    if (sub) {
      sub.count++
      return sub.ready
    }
    const ready = client.subscribeAsync(topic, { qos: 1 })
    ready.catch(() => {})
    this.responseSubs.set(topic, { count: 1, ready })
    return ready
  }

  private async unsubscribeResponses(client: mqtt.MqttClient, topic: string): Promise<void> {
    const sub = this.responseSubs.get(topic)
    if (!sub) return
    if (--sub.count > 0) return
    this.responseSubs.delete(topic)
    await client.unsubscribeAsync(topic).catch(() => {})
  }
}
