import type { AlertEvent, AlertSink } from './alerts.js'

/**
 * A URL's `user:password@` as an `Authorization: Basic` header, and the URL without it: fetch refuses
 * a URL that holds credentials (its error, logged at every alert, repeated them in full).
 */
export function credentialsOutOfUrl(url: string): { url: string; authorization: string | null } {
  const u = new URL(url)
  if (!u.username && !u.password) return { url: u.href, authorization: null }
  const pair = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`
  u.username = ''
  u.password = ''
  return { url: u.href, authorization: `Basic ${Buffer.from(pair).toString('base64')}` }
}

/** Alertmanager's API v2: POST /api/v2/alerts with a list of alerts (labels, annotations, times). */
export class WebhookSink implements AlertSink {
  readonly name = 'webhook'
  private readonly url: string
  private readonly headers: Record<string, string> = { 'content-type': 'application/json' }

  constructor(
    url: string,
    private readonly node: string,
    private readonly timeoutMs = 5_000,
  ) {
    const c = credentialsOutOfUrl(url)
    this.url = c.url
    if (c.authorization) this.headers['authorization'] = c.authorization
  }

  async deliver(e: AlertEvent): Promise<void> {
    const body = [
      {
        labels: { alertname: e.rule, severity: e.severity, service: 'gate-cloud', node: this.node },
        annotations: {
          summary: e.summary,
          description: `${e.metric} = ${e.value} (threshold ${e.threshold})${e.actionResult ? `; action ${e.action}: ${e.actionResult}` : ''}`,
        },
        startsAt: new Date(e.since).toISOString(),
        ...(e.state === 'resolved' ? { endsAt: new Date(e.at).toISOString() } : {}),
      },
    ]
    const res = await fetch(this.url, {
      method: 'POST',
      headers: this.headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    })
    if (!res.ok) throw new Error(`webhook answered ${res.status}`)
  }
}

/** A JSON message per event on an MQTT topic (QoS 1), for ops tools already on the broker. */
export class MqttSink implements AlertSink {
  readonly name = 'mqtt'
  constructor(
    private readonly publish: (topic: string, payload: string) => Promise<void>,
    private readonly topic: string,
    private readonly node: string,
  ) {}

  async deliver(e: AlertEvent): Promise<void> {
    await this.publish(this.topic, JSON.stringify({ v: 1, node: this.node, ts: e.at, ...e }))
  }
}
