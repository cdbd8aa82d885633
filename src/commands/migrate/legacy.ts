import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {renderTable, spinner} from '../../cli/render.js'
import {buildHandlerRegistry} from '../../daemon/daemon.js'
import {allGenerators} from '../../generators/index.js'
import {DEFAULT_BATCH_SIZE, LegacySource, MAX_BATCH_SIZE, checkNamespace, migrateLegacy, parseClassMap, parseSourceUrl, type LegacyMigrationReport, type LegacyProblem} from '../../migrate/legacy.js'

export type MigrateLegacyResult = LegacyMigrationReport

const SHOWN_REASONS = 20

export default class MigrateLegacy extends BaseCommand<typeof MigrateLegacy> {
  static override summary = 'Move a Phabricator worker queue and its webhooks into taskd (resumable; --dry-run first)'
  static override description = `Reads <namespace>_worker (worker_activetask, worker_archivetask, worker_taskdata, lisk_counter) and <namespace>_herald (herald_webhook, herald_webhookrequest) on the --source server and writes taskd's tasks, archive, hooks and request history. The source is only read unless --delete-migrated is given. What was imported is tracked in taskd_legacy_imports, so a rerun changes nothing and an interrupted run resumes. Exits 1 when a source row could not be migrated as it is (the ids are listed).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --source mysql://phab:secret@db.internal --dry-run',
    'TASKD_LEGACY_SOURCE_URL=mysql://phab:secret@db.internal <%= config.bin %> <%= command.id %> --include-archive --map-class PhabricatorSearchWorker=app.reindex',
  ]
  static override flags = {
    source: Flags.string({
      summary: 'The Phabricator MySQL server: mysql://user:pass@host[:port] (a database part is ignored; the schemas come from --namespace)',
      env: 'TASKD_LEGACY_SOURCE_URL',
      required: true,
    }),
    namespace: Flags.string({summary: 'Phabricator storage namespace: the schemas are <namespace>_worker and <namespace>_herald', default: 'phabricator'}),
    'dry-run': Flags.boolean({summary: 'Read and report what would be migrated (classes without a handler included); write nothing'}),
    'batch-size': Flags.integer({summary: 'Source rows per batch (one target transaction each)', default: DEFAULT_BATCH_SIZE, min: 1, max: MAX_BATCH_SIZE}),
    'include-archive': Flags.boolean({summary: 'Also copy archived (finished) tasks'}),
    'map-class': Flags.string({summary: 'Rename a task class on the way: Old=New (repeatable)', multiple: true}),
    'keep-leases': Flags.boolean({summary: 'Keep live Phabricator leases (taskd takes the task when the lease expires) instead of freeing them'}),
    'delete-migrated': Flags.boolean({summary: 'Delete each source row once its target row is committed'}),
    'allow-unhandled': Flags.boolean({summary: 'Queue tasks whose class has no handler in the target configuration (a daemon fails them)'}),
  }

  async run(): Promise<MigrateLegacyResult> {
    const json = this.jsonEnabled()
    const sourceTarget = parseSourceUrl(this.flags.source)
    const namespace = checkNamespace(this.flags.namespace)
    const classMap = parseClassMap(this.flags['map-class'])
    const {config} = await this.config_()
    const handledClasses = new Set(buildHandlerRegistry(allGenerators(config), config.handlers).keys())
    const storage = await this.openStorage()
    const source = await LegacySource.open(sourceTarget, namespace)
    const dryRun = this.flags['dry-run']
    const progress = spinner(`${dryRun ? 'Reading' : 'Migrating'} ${source.target.url} (${namespace})`, json).start()
    let report: LegacyMigrationReport
    try {
      report = await migrateLegacy(storage, source, {
        dryRun,
        batchSize: this.flags['batch-size'],
        includeArchive: this.flags['include-archive'],
        keepLeases: this.flags['keep-leases'],
        deleteMigrated: this.flags['delete-migrated'],
        allowUnhandled: this.flags['allow-unhandled'],
        classMap,
        handledClasses,
        onProgress: ({table, done, total}) => {
          progress.text = `${dryRun ? 'Reading' : 'Migrating'} ${table}: ${done}/${total}`
        },
      })
    } finally {
      progress.stop()
      await source.close().catch(() => undefined)
    }
    if (!json) this.render(report)
    const missing = report.problems.length
    if (missing > 0) {
      process.exitCode = 1
      if (!json) process.stderr.write(`Error: ${missing} source row${missing === 1 ? '' : 's'} could not be migrated as ${missing === 1 ? 'it is' : 'they are'} (listed above)\n`)
    }
    return report
  }

  private render(report: LegacyMigrationReport): void {
    const deleting = this.flags['delete-migrated'] && !report.dryRun
    const [imported, converted, failed] = report.dryRun ? ['would import', 'would convert', 'would import as failed'] : ['imported', 'converted', 'imported as failed']
    if (report.dryRun) this.log('Dry run: nothing was written.')
    this.log(`From ${report.source} (${report.namespace}) into ${report.target}`)
    this.log(
      renderTable(
        ['source table', 'rows', imported, converted, failed, 'skipped', 'already imported', ...(deleting ? ['deleted'] : [])],
        Object.values(report.tables).map((t) => [
          t.sourceTable + (t.included ? '' : ' (not included)'),
          t.total,
          t.imported,
          t.converted,
          t.failed,
          t.skipped,
          t.alreadyImported,
          ...(deleting ? [t.deleted] : []),
        ]),
      ),
    )
    if (report.classes.length > 0) {
      this.log(
        renderTable(
          ['task class', 'taskd class', 'active', 'archived', 'queued', 'handler'],
          report.classes.map((c) => [c.taskClass, c.targetClass === c.taskClass ? '' : c.targetClass, c.active, c.archived, c.queued, c.queued === 0 ? '' : c.handled ? 'yes' : 'NONE']),
        ),
      )
    }
    const leases = Object.entries(report.leases).map(([kind, n]) => `${kind} ${n}`)
    if (leases.length > 0) this.log(`Active task states: ${leases.join(', ')}.`)
    if (report.ids.renumbered > 0) this.log(`${report.ids.renumbered} task ids were taken in taskd and ${report.dryRun ? 'would get' : 'got'} new ids (legacy_id keeps the old one).`)
    for (const u of report.unhandledClasses) {
      this.log(`No handler for ${u.taskClass} (${u.count} queued): map it with --map-class ${u.taskClass}=<class> or register a handler in the config module.`)
    }
    for (const note of report.notes) this.log(`Note: ${note}.`)
    this.renderProblems(report.problems)
    const written = report.outcomes.imported + report.outcomes.converted + report.outcomes.failed
    this.log(
      `${report.dryRun ? 'Would migrate' : 'Migrated'} ${written} rows (${report.outcomes.alreadyImported} already imported) of ${report.rowsRead} read in ${report.seconds.toFixed(2)}s (${report.rowsPerSecond} rows/s).`,
    )
  }

  private renderProblems(problems: readonly LegacyProblem[]): void {
    if (problems.length === 0) return
    const groups = new Map<string, LegacyProblem[]>()
    for (const p of problems) {
      const key = `${p.table} ${p.outcome === 'failed' ? 'imported as failed' : 'skipped (not in taskd)'}`
      groups.set(key, [...(groups.get(key) ?? []), p])
    }
    for (const [key, list] of groups) this.log(`${key}: ${list.length} (ids ${list.map((p) => p.legacyId).join(', ')})`)
    for (const p of problems.slice(0, SHOWN_REASONS)) this.log(`  ${p.table} #${p.legacyId}: ${p.reason}${p.earlierRun ? ' (earlier run)' : ''}`)
    if (problems.length > SHOWN_REASONS) this.log(`  … ${problems.length - SHOWN_REASONS} more reasons in --json`)
  }
}
