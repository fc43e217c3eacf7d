/** Which decoder turned an advert into a token. */
export type DecoderName = 'ibeacon' | 'eddystone' | 'manufacturer'

/** A participant token heard once: the output of the decoders, the input of proximity. */
export interface Sighting {
  /** participant token, lower-case hex */
  token: string
  /** dBm */
  rssi: number
  /** monotonic ms (Clock.mono()) of the advert */
  ts: number
  address: string
  decoder: DecoderName
}

/** Why a candidate was denied (the roster's, the re-entry window's and the access rules' reasons). */
export type { DenyReason } from '../../shared/checkin.js'
/** What the gate decides for an arrival. */
export type Decision = 'admit' | 'deny'
