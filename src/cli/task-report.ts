import type {MutationName, MutationResult} from '../generators/queue/admin.js'
import {renderTable} from './render.js'

const VERBS: Record<MutationName, [done: string, would: string]> = {
  retry: ['Retried', 'Would retry'],
  cancel: ['Cancelled', 'Would cancel'],
  free: ['Freed', 'Would free'],
  priority: ['Reprioritized', 'Would reprioritize'],
  delay: ['Delayed', 'Would delay'],
}

/** The text report of a mutation: one summary line, then one row per task (refs, never bare ids). */
export function renderMutation(result: MutationResult): string {
  if (result.tasks.length === 0) return 'No tasks match the selection.'
  const [done, would] = VERBS[result.operation]
  const summary = `${result.dryRun ? would : done} ${result.changed} of ${result.tasks.length} task(s)${result.skipped ? `, ${result.skipped} skipped` : ''}${result.dryRun ? ' (dry run: nothing written)' : ''}.`
  const rows = result.tasks.map((t) => [t.ref, t.action === 'changed' ? (result.dryRun ? 'would change' : 'changed') : 'skipped', t.before ?? '', t.after ?? '', t.detail])
  return `${renderTable(['task', 'action', 'before', 'after', 'detail'], rows)}\n${summary}`
}
