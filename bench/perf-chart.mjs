// The benchmark's chart: ratio to bare Express per limiter and setup, one bar per traffic shape, as an SVG.

const COLORS = { allowed: '#3b82f6', blocked: '#f59e0b' }

/**
 * Horizontal grouped bars: for each setup (a heading) and each of its limiters (`scenariosOf`), the
 * allowed and blocked ratio to bare in that setup (1.0 marked). `names` names each scenario's limiter.
 */
export function renderChart(summary, setups, scenariosOf, names) {
  const rows = setups.flatMap((setup) => [{ setup }, ...scenariosOf(setup).map((scenario) => ({ setup, scenario }))])
  const shapes = ['allowed', 'blocked']
  const max = Math.max(1.2, ...summary.map((s) => s.ratio)) * 1.05
  const left = 400
  const width = 1000
  const plot = width - left - 60
  const rowHeight = 46
  const top = 50
  const headingHeight = 26
  const heightOf = (row) => (row.scenario === undefined ? headingHeight : rowHeight)
  const height = top + rows.reduce((sum, row) => sum + heightOf(row), 0) + 50
  const x = (ratio) => left + (ratio / max) * plot
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">Throughput as a ratio to bare Express (higher is better)</text>`,
  ]
  shapes.forEach((shape, i) => {
    parts.push(
      `<rect x="${left + i * 210}" y="32" width="12" height="12" fill="${COLORS[shape]}"/>`,
      `<text x="${left + 18 + i * 210}" y="43">${shape === 'allowed' ? 'allowed: 10,000 clients' : 'blocked: one client, >99% 429'}</text>`,
    )
  })
  let y = top
  for (const { setup, scenario } of rows) {
    if (scenario === undefined) {
      parts.push(`<text x="10" y="${y + 18}" font-weight="bold">${setup}</text>`)
      y += headingHeight
      continue
    }
    parts.push(`<text x="${left - 10}" y="${y + 30}" text-anchor="end">${names[scenario] ?? scenario}</text>`)
    shapes.forEach((shape, i) => {
      const entry = summary.find((s) => s.setup === setup && s.scenario === scenario && s.shape === shape)
      if (entry === undefined) return
      const barY = y + 10 + i * 17
      parts.push(
        `<rect x="${left}" y="${barY}" width="${(x(entry.ratio) - left).toFixed(1)}" height="15" fill="${COLORS[shape]}"/>`,
        `<text x="${(x(entry.ratio) + 5).toFixed(1)}" y="${barY + 12}" font-size="11">${entry.ratio.toFixed(2)}</text>`,
      )
    })
    y += rowHeight
  }
  const one = x(1).toFixed(1)
  parts.push(
    `<line x1="${one}" y1="${top}" x2="${one}" y2="${height - 40}" stroke="#111" stroke-dasharray="4 3"/>`,
    `<text x="${one}" y="${height - 25}" text-anchor="middle" font-size="11">1.0 = bare</text>`,
    '</svg>',
  )
  return `${parts.join('\n')}\n`
}
