import type { Logger } from 'pino'
import type { StreamName } from '../../shared/control.js'
import { byHandParamsSchema, logLevelParamsSchema, lookupParamsSchema } from '../../shared/control.js'
import { GateError } from '../../shared/errors.js'
import { advertToLine } from '../../shared/replay.js'
import type { Advert } from '../ble/source.js'
import type { AgentParts } from '../parts.js'
import { agentStatus, type StatusSources, syncStatus } from '../status.js'
import { lookupToken } from '../store/roster-lookup.js'

/** What the handlers answer from: the status's sources, and the log whose level they set. */
export interface HandlerSources extends StatusSources {
  log: Logger
}

/** The control socket's methods (gatectl's requests, and the MQTT commands that do the same). */
export type ControlHandlers = ReturnType<typeof controlHandlers>

/** The control socket's methods, answered from the parts running when each request arrives. */
export function controlHandlers(from: HandlerSources) {
  const { parts, config, clock, log } = from
  return {
    status: () => agentStatus(from),
    'roster.invalidate': () => {
      parts.roster?.notifyExternalChange()
      return { rosterVersion: parts.roster?.version() ?? 0 }
    },
    'roster.lookup': (params: Record<string, unknown>) => {
      const { token } = lookupParamsSchema.parse(params)
      const { db, dedup, proximity } = parts
      if (!db || !dedup || !proximity) return null
      return lookupToken(db, token.toLowerCase(), {
        windowMs: config.dedup.windowMs,
        now: clock.now(),
        present: proximity.isPresent(token.toLowerCase()),
        smoothedRssi: proximity.smoothed(token.toLowerCase()) ?? null,
      })
    },
    'scan.restart': async () => {
      await parts.source?.restartScan()
      return parts.source?.status() ?? null
    },
    'sync.now': async () => {
      await Promise.all([
        parts.syncer?.syncNow(),
        parts.puller?.pullNow().then(() => parts.occupancy?.turn(true)),
      ])
      return syncStatus(from)
    },
    'sync.resendRefused': () => {
      const resent = parts.outbox?.resendRefused() ?? 0
      if (resent > 0) void parts.syncer?.syncNow()
      return { resent }
    },
    'checkin.byHand': async (params: Record<string, unknown>) => {
      const req = byHandParamsSchema.parse(params)
      if (!parts.pipeline)
        throw new GateError('E_CONTROL_UNAVAILABLE', 'the agent is still starting; try again')
      const checkin = await parts.pipeline.decideByHand(req)
      log.warn(
        { id: checkin.id, token: checkin.token, participantId: checkin.participantId, actor: req.actor },
        `${req.direction === 'out' ? 'checked out' : req.decision} by hand: ${req.note}`,
      )
      return checkin
    },
    'log.level': (params: Record<string, unknown>) => {
      const { level } = logLevelParamsSchema.parse(params)
      log.level = level
      return { level }
    },
  }
}

/** Feed one of the pipeline's streams to a control-socket subscriber; returns how to stop it. */
export function subscribeStream(
  parts: Readonly<AgentParts>,
  stream: StreamName,
  send: (data: unknown) => void,
): () => void {
  const pipeline = parts.pipeline
  if (!pipeline) return () => {}
  const event = stream === 'decisions' ? 'decision' : stream === 'sightings' ? 'sighting' : 'advert'
  const listener =
    event === 'advert'
      ? (advert: unknown) => {
          // the capture format's fields (shared/replay.ts), stamped with the monotonic time
          const received = advert as Advert
          const { t: _t, ...fields } = advertToLine(received, 0)
          send({ ...fields, ts: received.ts })
        }
      : send
  pipeline.on(event, listener as never)
  return () => pipeline.off(event, listener as never)
}
