import {BaseCommand} from '../../cli/base-command.js'
import {renderTable} from '../../cli/render.js'
import {migrationStatus, type MigrationStatus} from '../../storage/migrations.js'

export interface DbStatusResult {
  database: string
  dialect: string
  migrations: MigrationStatus[]
  pending: number
}

export default class DbStatus extends BaseCommand<typeof DbStatus> {
  static override summary = 'Show the database in use and its applied and pending migrations'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<DbStatusResult> {
    const storage = await this.openStorage({checkSchema: false})
    const migrations = await migrationStatus(storage)
    const pending = migrations.filter((m) => !m.applied).length
    this.log(`Database: ${storage.target.url} (${storage.dialect.name})`)
    this.log(renderTable(['migration', 'status', 'applied at'], migrations.map((m) => [m.name, m.applied ? 'applied' : 'pending', m.appliedAt])))
    this.log(pending ? `${pending} pending: run \`taskd db migrate\`` : 'Schema is up to date.')
    return {database: storage.target.url, dialect: storage.dialect.name, migrations, pending}
  }
}
