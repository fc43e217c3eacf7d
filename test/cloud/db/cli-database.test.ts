import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDatabase } from '../../support/pg-helpers.js'
import { cloudCli } from '../../support/process-helpers.js'

/** What gate-cloud says when DATABASE_URL is not the cloud's database: a newcomer's first trip. */
describe('gate-cloud on the wrong database', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  beforeAll(async () => {
    db = await tempDatabase({ migrate: false })
  })
  afterAll(async () => {
    await db.drop()
  })

  it('names the database and both fixes instead of a bare "relation does not exist"', async () => {
    const r = await cloudCli(['gates', 'list'], { DATABASE_URL: db.url })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`the database "${db.name}" on 127.0.0.1:5432 has no gates table`)
    expect(r.stderr).toContain('Point DATABASE_URL at the cloud')
    expect(r.stderr).toContain('gate-cloud migrate')
  })

  it('names the database it cannot reach, without its password', async () => {
    const url = 'postgres://someone:hunter2-secret@127.0.0.1:9/eventdb'
    const r = await cloudCli(['gates', 'list'], { DATABASE_URL: url })
    expect(r.code).toBe(4)
    expect(r.stderr).toContain('cannot connect to the database "eventdb" on 127.0.0.1:9')
    expect(r.stderr).not.toContain('hunter2')
  })
})
