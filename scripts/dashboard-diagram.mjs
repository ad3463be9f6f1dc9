// Draws docs/grafana/rate-limiting.json as an SVG layout: each panel where Grafana puts it, with its
// title, kind, unit and series. `--check` fails when the SVG beside it is out of date.
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DASHBOARD = join(ROOT, 'docs', 'grafana', 'rate-limiting.json')
const SVG = join(ROOT, 'docs', 'grafana', 'rate-limiting.svg')

const COLUMN = 40 // px per grid column (24 columns)
const ROW = 30 // px per grid row
const PAD = 6
const UNITS = { percentunit: '%', reqps: 'req/s', s: 'seconds', short: '', none: '' }

const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** One line per series: its legend, with Grafana's {{label}} shown as <label>. */
const seriesOf = (panel) =>
  panel.targets.map((target) => (target.legendFormat || target.expr).replace(/\{\{\s*(\w+)\s*\}\}/g, '<$1>'))

export function render(dashboard) {
  const bottom = Math.max(...dashboard.panels.map((p) => p.gridPos.y + p.gridPos.h))
  const width = 24 * COLUMN
  const height = bottom * ROW + 40
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#111217"/>`,
    `<text x="${PAD * 2}" y="26" fill="#ccccdc" font-size="16" font-weight="bold">${escape(dashboard.title)} (layout of docs/grafana/rate-limiting.json)</text>`,
  ]
  for (const panel of dashboard.panels) {
    const { x, y, w, h } = panel.gridPos
    const left = x * COLUMN + PAD
    const top = y * ROW + 40 + PAD / 2
    const boxWidth = w * COLUMN - PAD * 2
    const boxHeight = h * ROW - PAD
    const unit = UNITS[panel.fieldConfig?.defaults?.unit] ?? panel.fieldConfig?.defaults?.unit ?? ''
    parts.push(
      `<g>`,
      `<rect x="${left}" y="${top}" width="${boxWidth}" height="${boxHeight}" rx="4" fill="#181b1f" stroke="#2c3235"/>`,
      `<text x="${left + 10}" y="${top + 20}" fill="#ccccdc" font-size="13" font-weight="bold">${escape(panel.title)}</text>`,
      `<text x="${left + 10}" y="${top + 36}" fill="#8e8e8e" font-size="11">${escape(panel.type)}${unit ? ` · ${escape(unit)}` : ''}</text>`,
    )
    seriesOf(panel).forEach((series, index) => {
      const lineY = top + 60 + index * 17
      if (lineY > top + boxHeight - 6) return
      const color = ['#73bf69', '#f2cc0c', '#8ab8ff', '#ff9830', '#f2495c', '#b877d9'][index % 6]
      parts.push(
        `<rect x="${left + 10}" y="${lineY - 9}" width="12" height="3" fill="${color}"/>`,
        `<text x="${left + 28}" y="${lineY - 4}" fill="#a0a0b0" font-size="11">${escape(series)}</text>`,
      )
    })
    parts.push(`</g>`)
  }
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}

const svg = render(JSON.parse(readFileSync(DASHBOARD, 'utf8')))
if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(SVG, 'utf8')
  } catch {
    // Missing counts as out of date.
  }
  if (current !== svg) {
    console.error('docs/grafana/rate-limiting.svg is out of date: run node scripts/dashboard-diagram.mjs')
    process.exit(1)
  }
} else {
  writeFileSync(SVG, svg)
  console.log(`wrote ${SVG}`)
}
