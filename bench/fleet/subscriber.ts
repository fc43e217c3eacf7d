import mqtt from 'mqtt'
import { MQTT_URL } from './settings.js'

/** The subscriber process, the baseline consumer: parses every message, keeps a count. */
export async function subscriber(): Promise<void> {
  const c = await mqtt.connectAsync(MQTT_URL, { clientId: `bench-sub-${process.pid}`, protocolVersion: 5 })
  let messages = 0
  let bad = 0
  c.on('message', (_t, payload) => {
    messages++
    try {
      JSON.parse(payload.toString('utf8'))
    } catch {
      bad++
    }
  })
  await c.subscribeAsync({
    'gates/+/status': { qos: 1 },
    'gates/+/metrics': { qos: 0 },
    'gates/+/events': { qos: 1 },
  })
  process.send?.({ type: 'subscribed' })
  process.on('message', (m: { type: string }) => {
    if (m.type === 'count') process.send?.({ type: 'count', messages, bad })
  })
}
