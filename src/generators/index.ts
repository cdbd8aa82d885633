import {usageError} from '../core/errors.js'
import type {TaskGenerator} from '../core/generator.js'
import type {TaskdConfig} from '../config/config.js'
import type {Storage} from '../storage/storage.js'
import {gcGenerator} from './gc/generator.js'
import {queueGenerator} from './queue/generator.js'
import {webhooksGenerator} from './webhooks/generator.js'

/** The built-in generators, in display order. The only file that lists them all. */
export function builtinGenerators(config: TaskdConfig = {}): TaskGenerator<Storage>[] {
  return [queueGenerator, webhooksGenerator(config.webhooks), gcGenerator()]
}

/** Every generator a daemon with this config runs: built-in ones, then the config module's. */
export function allGenerators(config: TaskdConfig): TaskGenerator<Storage>[] {
  const list = [...builtinGenerators(config), ...(config.generators ?? [])]
  const seen = new Set<string>()
  for (const g of list) {
    if (seen.has(g.key)) throw usageError(`two generators use the key '${g.key}': keys must be unique`, 'E_CONFIG')
    seen.add(g.key)
  }
  return list
}

export function findGenerator(generators: readonly TaskGenerator<Storage>[], key: string): TaskGenerator<Storage> {
  const found = generators.find((g) => g.key === key)
  if (!found) throw usageError(`unknown generator '${key}': valid keys are ${generators.map((g) => g.key).join(', ')}`, 'E_UNKNOWN_GENERATOR')
  return found
}

/** Parses `--generators a,b` against the known keys. */
export function selectGenerators(generators: readonly TaskGenerator<Storage>[], csv: string | undefined): TaskGenerator<Storage>[] {
  if (!csv) return [...generators]
  return csv
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((key) => findGenerator(generators, key))
}
