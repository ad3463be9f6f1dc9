// Limits as an environment variable spells them: `burst=10/1s,hourly=1000/1h`.
import { checkLimits, type Limit } from './limits.js'

/** ms in one of each unit a window may be written in; a bare number is ms. */
const UNITS: Readonly<Record<string, number>> = Object.freeze({
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
})

/** `[name=]max/window`, the window a whole number with an optional unit. */
const ENTRY = /^(?:([A-Za-z0-9_.-]{1,32})=)?(\d{1,16})\/(\d{1,16})(ms|s|m|h|d)?$/

/**
 * The limits a variable's text spells, checked as the `limits` option is; the text itself, left
 * for the caller to refuse, when it spells none that would pass.
 */
export function limitsText(text: string): readonly Limit[] | string {
  const limits: Limit[] = []
  for (const entry of text.split(',')) {
    const match = ENTRY.exec(entry.trim())
    if (match === null) return text
    const [, name, max, window, unit = 'ms'] = match
    limits.push({ ...(name === undefined ? {} : { name }), max: Number(max), windowMs: Number(window) * UNITS[unit]! })
  }
  try {
    checkLimits(limits)
  } catch {
    return text
  }
  return limits
}
