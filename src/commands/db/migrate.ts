import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {migrateToLatest, migrationStatus} from '../../storage/migrations.js'

export interface DbMigrateResult {
  database: string
  dryRun: boolean
  /** Migrations applied by this run (or that would be, with --dry-run). */
  applied: string[]
  pending: string[]
}

export default class DbMigrate extends BaseCommand<typeof DbMigrate> {
  static override summary = 'Apply pending schema migrations (safe to run from many processes at once)'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --dry-run --database mysql://root@127.0.0.1:3306/taskd']
  static override flags = {
    'dry-run': Flags.boolean({summary: 'List the migrations that would run; change nothing'}),
  }

  async run(): Promise<DbMigrateResult> {
    const storage = await this.openStorage({checkSchema: false})
    const pending = (await migrationStatus(storage)).filter((m) => !m.applied).map((m) => m.name)
    if (this.flags['dry-run']) {
      this.log(pending.length ? `Would apply ${pending.length} migration(s): ${pending.join(', ')}` : 'Schema is up to date; nothing to apply.')
      return {database: storage.target.url, dryRun: true, applied: pending, pending}
    }
    const applied = await migrateToLatest(storage)
    this.log(applied.length ? `Applied ${applied.length} migration(s): ${applied.join(', ')}` : 'Schema is up to date; nothing to apply.')
    return {database: storage.target.url, dryRun: false, applied, pending: []}
  }
}
