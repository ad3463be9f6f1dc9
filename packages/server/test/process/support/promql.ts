// Just enough PromQL reading to say which metric names and label names a dashboard query uses.

const FUNCTIONS_AND_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
])

export interface QueryNames {
  readonly metrics: ReadonlySet<string>
  readonly labels: ReadonlySet<string>
  /** `label="value"` matchers with a fixed value: the value must be one the server exports. */
  readonly equals: readonly { readonly label: string; readonly value: string }[]
}

/**
 * The metric names (selectors) and label names (in matchers, `by`/`without`, `on`/`ignoring`) of a
 * PromQL expression. Grafana variables ($namespace, $__rate_interval) are allowed where they appear.
 */
export function namesIn(expr: string): QueryNames {
  const metrics = new Set<string>()
  const labels = new Set<string>()
  const equals: { label: string; value: string }[] = []
  let rest = expr
  // Label matchers: {name="value", other=~"$var"}.
  rest = rest.replace(/\{([^}]*)\}/g, (_all, body: string) => {
    for (const matcher of body.split(',')) {
      const match = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*$/.exec(matcher)
      if (match === null) throw new Error(`cannot read the matcher ${JSON.stringify(matcher)} in ${expr}`)
      const [, name, op, value] = match
      labels.add(name!)
      if (op === '=' && !value!.includes('$')) equals.push({ label: name!, value: value! })
    }
    return ' '
  })
  // Grouping: by (a, b), without (...), on (...), ignoring (...).
  rest = rest.replace(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g, (_all, _keyword: string, body: string) => {
    for (const name of body.split(',').map((n) => n.trim())) if (name !== '') labels.add(name)
    return ' '
  })
  // Ranges ([5m], [$__rate_interval]), strings and numbers say nothing about names.
  rest = rest
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/"[^"]*"/g, ' ')
    .replace(/\b\d+(\.\d+)?(e-?\d+)?\b/g, ' ')
  for (const match of rest.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    const [, name, call] = match
    if (call !== undefined || FUNCTIONS_AND_KEYWORDS.has(name!)) continue
    metrics.add(name!)
  }
  return { metrics, labels, equals }
}

/** Metric (sample) names, with the label names and values seen on them, from the Prometheus text format. */
export function exported(text: string): Map<string, Map<string, Set<string>>> {
  const names = new Map<string, Map<string, Set<string>>>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? \S+$/.exec(line)
    if (match === null) throw new Error(`cannot read the sample line ${line}`)
    const labels = names.get(match[1]!) ?? new Map<string, Set<string>>()
    for (const [, label, value] of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      const values = labels.get(label!) ?? new Set<string>()
      values.add(value!)
      labels.set(label!, values)
    }
    names.set(match[1]!, labels)
  }
  return names
}

/** The value of one sample line, e.g. `rate_limit_skipped_total{namespace="metaverses",type="read"}`. */
export function sampleValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}
