// Every value the package exports is documented in docs/rate-limiting.md: nothing public by accident.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { describe, expect, it } from 'vitest'

import * as api from '#src/index.js'

const DOC = readFileSync(fileURLToPath(new URL('../../../../docs/rate-limiting.md', import.meta.url)), 'utf8')

describe('the public API', () => {
  it('names every runtime export in docs/rate-limiting.md', () => {
    const undocumented = Object.keys(api).filter((name) => !new RegExp(`\`${name}\\b`).test(DOC))
    expect(undocumented).toEqual([])
  })

  it('documents each constant with its value, as the code has it', () => {
    for (const [name, value] of [
      ['MAX_CLIENT_KEY_BYTES', api.MAX_CLIENT_KEY_BYTES.toLocaleString('en-US')],
      ['NEAR_LIMIT_SHARE', String(api.NEAR_LIMIT_SHARE)],
      ['MAX_AUDITED_KEYS', api.MAX_AUDITED_KEYS.toLocaleString('en-US')],
    ] as const) {
      const row = DOC.split('\n').find((line) => line.startsWith(`| \`${name}\``))
      expect(row, name).toContain(`| ${value}:`)
    }
  })
})
