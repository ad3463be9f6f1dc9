// The README's usage snippet, run as it is written: a real process with the built library.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { waitFor } from '../../../utils/test/support/http.js'
import { freePort } from '../../../utils/test/support/ports.js'
import { REPO_ROOT, spawnWatched } from './support/server-process.js'

/** The first ```ts block after "## Usage" in README.md. */
function usageSnippet(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
  const usage = readme.slice(readme.indexOf('## Usage'))
  const match = /```ts\n([\s\S]*?)```/.exec(usage)
  if (match === null) throw new Error('README.md has no ```ts block under ## Usage')
  return match[1]!
}

// Inside packages/server/node_modules, so that the snippet's imports resolve as in an app that
// depends on express and @universo/utils; node_modules is never committed.
const DIR = join(REPO_ROOT, 'packages', 'server', 'node_modules', '.readme-test')
afterAll(() => rmSync(DIR, { recursive: true, force: true }))

describe('the README usage snippet', () => {
  it('limits reads to 100, answers writes, and exits cleanly on SIGTERM', async () => {
    const snippet = usageSnippet()
    // The one change: its port, so that the test never takes one it did not pick.
    expect(snippet).toContain('app.listen(3000)')
    mkdirSync(DIR, { recursive: true })
    const file = join(DIR, 'usage.mjs')
    writeFileSync(file, snippet.replace('app.listen(3000)', 'app.listen(Number(process.env.PORT))'))
    const port = await freePort()
    const snippetProcess = spawnWatched(process.execPath, [file], {
      cwd: DIR,
      env: { PORT: String(port), REDIS_URL: '' },
    })
    try {
      const url = `http://127.0.0.1:${port}/api/v1/metaverses`
      // Its first answer is to a POST: until it listens, the POST fails to connect and is sent again.
      let created: number | undefined
      await waitFor(
        'the snippet to listen',
        async () => {
          if (snippetProcess.child.exitCode !== null) throw new Error('the snippet exited')
          created = await fetch(url, { method: 'POST' }).then(
            (response) => response.status,
            () => undefined,
          )
          return created !== undefined
        },
        10_000,
        50,
      ).catch((error: Error) => {
        throw new Error(`${error.message}: ${snippetProcess.output()}`)
      })
      expect(created).toBe(201)
      const statuses: number[] = []
      for (let i = 0; i < 101; i++) statuses.push((await fetch(url)).status)
      expect(statuses.slice(0, 100).every((status) => status === 200)).toBe(true)
      expect(statuses[100]).toBe(429)
      const refused = await fetch(url)
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/)
      expect(refused.headers.get('ratelimit-policy')).toMatch(/^"read"; q=100; w=900; pk=:/)
      expect(await refused.json()).toMatchObject({ success: false, code: 'RATE_LIMIT_EXCEEDED' })
    } finally {
      await snippetProcess.stop()
    }
    expect((await snippetProcess.exited).code).toBe(0)
    expect(snippetProcess.output()).toContain('[RateLimit:read] Using MemoryStore (single-instance mode)')
  })
})
