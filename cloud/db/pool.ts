import pg from 'pg'

/** A connected client for one-off work (migrations, CLI commands). The caller ends it. */
export async function connectClient(databaseUrl: string, applicationName = 'gate-cloud'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: applicationName })
  await client.connect()
  return client
}

/** Quote an identifier for DDL. Only ever used on names the code generated and validated itself. */
export function ident(client: pg.ClientBase, name: string): string {
  return client.escapeIdentifier(name)
}
