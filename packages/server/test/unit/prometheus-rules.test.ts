// docs/prometheus/alerts.yml through Prometheus's own promtool: the rules load (check rules), and
// every alert fires when it should and stays silent when it should not (test rules, with
// docs/prometheus/alerts.test.yml). Under CI=true a missing promtool fails the run.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

const ROOT = join(import.meta.dirname, '..', '..', '..', '..')
const ALERTS = join(ROOT, 'docs', 'prometheus', 'alerts.yml')
const ALERT_TESTS = join(ROOT, 'docs', 'prometheus', 'alerts.test.yml')
const INSTALL_HINT =
  'promtool is not installed: the alert rules are tested with it. Install it with `sudo apt-get install -y prometheus` (Debian/Ubuntu).'

const promtoolAvailable = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0

const promtool = (...args: string[]) => spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' })

interface RuleFile {
  readonly groups: readonly { readonly rules: readonly { readonly alert?: string }[] }[]
}
interface RuleTests {
  readonly tests: readonly {
    readonly alert_rule_test?: readonly { readonly alertname: string; readonly exp_alerts: readonly unknown[] }[]
  }[]
}

describe('promtool', () => {
  it('is installed, or the run says so (and fails under CI=true)', () => {
    if (!promtoolAvailable && process.env.CI === 'true')
      throw new Error(`${INSTALL_HINT} Under CI=true this fails the run.`)
    if (!promtoolAvailable) console.warn(`\n!!! SKIPPING the alert rule tests. ${INSTALL_HINT}\n`)
    expect(promtoolAvailable || process.env.CI !== 'true').toBe(true)
  })
})

describe.runIf(promtoolAvailable)('docs/prometheus/alerts.yml under promtool', () => {
  it('passes promtool check rules', () => {
    const run = promtool('check', 'rules', ALERTS)
    expect(run.stdout + run.stderr).toContain('SUCCESS: 5 rules found')
    expect(run.status).toBe(0)
  })

  it('passes promtool test rules: each alert fires when it should and stays silent when it should not', () => {
    const run = promtool('test', 'rules', ALERT_TESTS)
    expect(run.stdout + run.stderr).toContain('SUCCESS')
    expect(run.status).toBe(0)
  })

  it('has, for every alert, a test where it fires and one where it stays silent', () => {
    const alerts = (parse(readFileSync(ALERTS, 'utf8')) as RuleFile).groups.flatMap((group) =>
      group.rules.flatMap((rule) => (rule.alert === undefined ? [] : [rule.alert])),
    )
    const cases = (parse(readFileSync(ALERT_TESTS, 'utf8')) as RuleTests).tests.flatMap(
      (test) => test.alert_rule_test ?? [],
    )
    expect(alerts.length).toBe(5)
    for (const alert of alerts) {
      const mine = cases.filter((test) => test.alertname === alert)
      expect(
        mine.some((test) => test.exp_alerts.length > 0),
        `${alert} fires somewhere`,
      ).toBe(true)
      expect(
        mine.some((test) => test.exp_alerts.length === 0),
        `${alert} stays silent somewhere`,
      ).toBe(true)
    }
  })
})
