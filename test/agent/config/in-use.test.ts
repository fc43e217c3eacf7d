import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadCliConfig } from '../../../agent/cli/context.js'
import { findDataDirs, noDataMessage } from '../../../agent/cli/data-dirs.js'
import { CONFIG_IN_USE, writeConfigInUse } from '../../../agent/config/in-use.js'
import { loadAgentConfig } from '../../../agent/config/load.js'
import { tempDir } from '../../support/helpers.js'

const SECRETS = ['gate-key-never-in-files', 'mqtt-password-never-in-files', 'command-secret-never-here']

describe('the configuration a gate runs, for gatectl', () => {
  const tmp = tempDir()
  afterEach(() => tmp.cleanup())

  const runningGate = (dataDir: string) => {
    mkdirSync(dataDir, { recursive: true })
    const config = loadAgentConfig({
      env: {
        GATE_KEY: SECRETS[0],
        MQTT_PASSWORD: SECRETS[1],
        GATE_CMD_SECRET: SECRETS[2],
        GATE_CLOUD_URL: 'http://127.0.0.1:9',
        MQTT_URL: 'mqtt://127.0.0.1:9',
      },
      overrides: {
        gateId: 'hall-north',
        dataDir,
        source: { kind: 'sim' },
        decoders: { ibeacon: { uuid: '11112222333344445555666677778888' } },
      },
    })
    writeConfigInUse(config)
    return config
  }

  it('keeps what the gate resolved, without its secrets, and gatectl reads the gate with it', () => {
    const dataDir = path.join(tmp.dir, 'gate')
    runningGate(dataDir)
    const text = readFileSync(path.join(dataDir, CONFIG_IN_USE), 'utf8')
    for (const secret of SECRETS) expect(text).not.toContain(secret)

    // no --config and no GATE_CONFIG: the gate's own source and decoders, not the defaults
    const seen = loadCliConfig({ dataDir }, {})
    expect(seen.gateId).toBe('hall-north')
    expect(seen.source.kind).toBe('sim')
    expect(seen.decoders.ibeacon.uuid).toBe('11112222333344445555666677778888')
    expect(seen.dataDir).toBe(dataDir)
    expect(seen.cloud.gateKey).toBeUndefined()

    // a configuration given by hand still wins
    const given = path.join(tmp.dir, 'given.json')
    writeFileSync(
      given,
      JSON.stringify({ gateId: 'by-hand', source: { kind: 'replay', replay: { file: 'x' } } }),
    )
    expect(loadCliConfig({ dataDir, config: given }, {}).gateId).toBe('by-hand')
    expect(loadCliConfig({ dataDir }, { GATE_CONFIG: given }).source.kind).toBe('replay')
    // a directory whose gate never ran: the defaults
    expect(loadCliConfig({ dataDir: path.join(tmp.dir, 'never') }, {}).source.kind).toBe('noble')
  })

  it('without gate data, names the directories that have some and the command to use', () => {
    for (const id of ['gate-1', 'gate-2']) {
      const dir = path.join(tmp.dir, 'data', 'gates', id)
      runningGate(dir)
      writeFileSync(path.join(dir, 'agent.db'), '')
    }
    mkdirSync(path.join(tmp.dir, 'data', 'gates', 'empty'), { recursive: true })
    const found = findDataDirs(tmp.dir).filter((f) => f.dir.startsWith(tmp.dir))
    expect(found.map((f) => path.relative(tmp.dir, f.dir)).sort()).toEqual([
      path.join('data', 'gates', 'gate-1'),
      path.join('data', 'gates', 'gate-2'),
    ])
    expect(found.every((f) => f.gateId === 'hall-north')).toBe(true)
    const message = noDataMessage(path.join(tmp.dir, 'data', 'agent'), found, tmp.dir)
    expect(message).toContain(`no gate data in ${path.join(tmp.dir, 'data', 'agent')}`)
    expect(message).toContain(`${path.join('data', 'gates', 'gate-1')}  (gate hall-north)`)
    expect(message).toContain(`gatectl --data-dir ${path.join('data', 'gates', 'gate-1')} status`)
    expect(noDataMessage('/nowhere', [], tmp.dir)).toMatch(/--data-dir DIR/)
  })
})
