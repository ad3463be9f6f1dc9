// A logger that records every line, so tests can assert on exactly what operators would see.
import type { RateLimitLogger } from '#src/index.js'

export interface RecordedLine {
  readonly level: 'info' | 'warn' | 'error'
  readonly message: string
  /** What came after the message (an audit record, an error). */
  readonly details: readonly unknown[]
}

export interface RecordingLogger extends RateLimitLogger {
  readonly lines: RecordedLine[]
  /** Messages only, in order. */
  messages(): string[]
  /** Every line and its details flattened to text, for "never prints the password" checks. */
  text(): string
}

/** A detail as text: an Error with its stack, an object as JSON (so assertions see inside it). */
function detailText(detail: unknown): string {
  if (detail instanceof Error) return `${detail.message} ${detail.stack}`
  if (typeof detail === 'object' && detail !== null) return JSON.stringify(detail)
  return String(detail)
}

export function recordingLogger(): RecordingLogger {
  const lines: RecordedLine[] = []
  const details: string[] = []
  const record =
    (level: RecordedLine['level']) =>
    (message: string, ...rest: unknown[]): void => {
      lines.push({ level, message, details: rest })
      details.push(message, ...rest.map(detailText))
    }
  return {
    lines,
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    messages: () => lines.map((l) => l.message),
    text: () => details.join('\n'),
  }
}
