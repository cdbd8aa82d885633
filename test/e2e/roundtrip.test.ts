import {afterAll, describe, expect, it} from 'vitest'

import {removeTempDirs, runCli, runCliOk, tempDir} from '../helpers/cli.js'
import {DIALECTS, createTestDatabase, type TestDatabase} from '../helpers/databases.js'

/**
 * Awkward values (quotes, backslashes, newlines, unicode, emoji, SQL-ish text, a long string) go in
 * through the CLI and come back out of it unchanged, on both dialects.
 */
const AWKWARD = `it's "quoted" \\ back\\\\slash; DROP TABLE taskd_tasks; -- é ü ß 中文 🎉\n\ttab %s %d $1 \${x} end`
const LONG = 'x'.repeat(60_000) + '✓'

describe.each(DIALECTS)('values round-trip through the CLI on $name', ({name, skip}) => {
  const databases: TestDatabase[] = []
  afterAll(async () => {
    for (const d of databases) await d.drop()
    removeTempDirs()
  })

  it.skipIf(skip)('task data, classes, refs, webhook names and event payloads come back unchanged', async () => {
    const database = await createTestDatabase(name)
    databases.push(database)
    const cwd = tempDir()
    const d = ['--database', database.url, '--json']
    await runCliOk(['db', 'migrate', ...d], {cwd})

    const data = {text: AWKWARD, long: LONG, list: [AWKWARD, null, 1.5, true], nested: {[AWKWARD]: AWKWARD}}
    const taskClass = `app.${AWKWARD.slice(0, 40)}`
    const object = `obj:${AWKWARD.slice(0, 60)}`
    const enqueued = await runCliOk<{ref: string; id: number}>(['tasks', 'enqueue', taskClass, '--data', '@-', '--object', object, ...d], {cwd, input: JSON.stringify(data)})
    const shown = await runCliOk<{taskClass: string; objectRef: string | null; data: unknown}>(['tasks', 'show', String(enqueued.id), ...d], {cwd})
    expect(shown.taskClass).toBe(taskClass)
    expect(shown.objectRef).toBe(object)
    expect(shown.data).toEqual(data)
    const listed = await runCliOk<{tasks: {taskClass: string}[]}>(['tasks', 'list', '--class', taskClass, ...d], {cwd})
    expect(listed.tasks.map((t) => t.taskClass)).toEqual([taskClass])

    const hook = await runCliOk<{id: number; name: string}>(['webhooks', 'add', '--name', AWKWARD, '--url', 'https://example.com/a?b="c"&d=\\e', '--firehose', ...d], {cwd})
    expect(hook.name).toBe(AWKWARD)
    const hooks = await runCliOk<{hooks: {name: string; url: string}[]}>(['webhooks', 'list', ...d], {cwd})
    expect(hooks.hooks[0].name).toBe(AWKWARD)
    await runCliOk(['webhooks', 'publish', '--event', 'task.edited', '--object', object, '--data', JSON.stringify(data), ...d], {cwd})
    const requests = await runCliOk<{requests: {objectRef: string | null; eventType: string}[]}>(['webhooks', 'requests', ...d], {cwd})
    expect(requests.requests[0]).toMatchObject({objectRef: object, eventType: 'task.edited'})

    // Text output prints them too, without crashing on any of them.
    const text = await runCli(['tasks', 'show', String(enqueued.id), '--database', database.url], {cwd})
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain('DROP TABLE taskd_tasks')
  })

  it.skipIf(skip)('an unknown collector or generator key exits 2 and names the valid ones', async () => {
    const database = await createTestDatabase(name)
    databases.push(database)
    const cwd = tempDir()
    await runCliOk(['db', 'migrate', '--database', database.url], {cwd})
    const collector = await runCli(['gc', 'set-policy', 'nope', '--days', '3', '--database', database.url], {cwd})
    expect(collector.code).toBe(2)
    expect(collector.stderr.trim().split('\n')).toHaveLength(1)
    expect(collector.stderr).toContain('valid collectors are archived-tasks, daemons, webhook-requests')
    const collect = await runCli(['gc', 'collect', '--collector', 'nope', '--database', database.url, '--json'], {cwd})
    expect(collect.code).toBe(2)
    expect((collect.json as {error: {code: string}}).error.code).toBe('E_UNKNOWN_COLLECTOR')
    const generator = await runCli(['generators', 'pause', 'nope', '--database', database.url], {cwd})
    expect(generator.code).toBe(2)
    expect(generator.stderr).toContain('valid keys are queue, webhooks, gc')
  })
})
