// Removes credentials from anything that may reach a log line or an error message.

// A token with something before its @: an `@` that starts a word (Redis's `@user_script`) hides nothing.
/** The `scheme://` a URL starts with. */
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i
const TOKEN_WITH_USERINFO = /(^|[\s"'(,=<])([a-z][a-z0-9+.-]*:\/\/)?([^\s"'<>]+)@(?=\S)/gi

/**
 * Hides the userinfo of every URL-like token in `text`: `redis://user:pass@host` becomes
 * `redis://user:***@host`. A userinfo without a colon, or one without a scheme before it, is
 * hidden whole, because some people put a password there. It errs towards hiding too much.
 */
export function redactCredentials(text: string): string {
  return text
    .replace(SECRET_QUERY, '$1***')
    .replace(TOKEN_WITH_USERINFO, (_match, lead: string, scheme: string | undefined, userinfo: string) => {
      const colon = userinfo.indexOf(':')
      const safe =
        scheme !== undefined && colon >= 0 && !userinfo.includes('/') ? `${userinfo.slice(0, colon)}:***` : '***'
      return `${lead}${scheme ?? ''}${safe}@`
    })
}

const SECRET_QUERY = /([?&](?:password|pass|pwd|secret|token|auth)=)[^&\s"'<>]*/gi

/**
 * A URL as it may appear in an error: userinfo, query and fragment hidden. Never throws; a string
 * that does not parse as a URL with a host loses everything before its last `@` and after `?`,
 * and one without a scheme is not shown at all (it could be a pasted password).
 */
export function redactUrl(raw: string): string {
  let parsed: URL | undefined
  try {
    // A URL whose userinfo holds an unencoded / ? or # parses, but wrongly: the rest of the
    // password lands in its path or query. Such a URL takes the cautious way below.
    parsed = hasAtAfterHost(raw) ? undefined : new URL(raw)
  } catch {
    parsed = undefined
  }
  if (parsed !== undefined && parsed.host !== '') {
    const auth = parsed.password !== '' ? `${parsed.username}:***@` : parsed.username !== '' ? '***@' : ''
    // Not even the query's keys: `?hunter2` would be one.
    const query = parsed.search === '' ? '' : '?***'
    const path = parsed.pathname === '/' ? '' : parsed.pathname
    return `${parsed.protocol}//${auth}${parsed.host}${path}${query}${parsed.hash === '' ? '' : '#***'}`
  }
  // Without a scheme it may be anything, a bare password included: do not echo it.
  const scheme = SCHEME.exec(raw)?.[0]
  if (scheme === undefined) return `<${raw.length} characters without a scheme://>`
  // The userinfo first: a password may hold the `?` or `#` that kept the URL from parsing.
  let text = raw
  const at = text.lastIndexOf('@')
  if (at !== -1) text = `${scheme}***${text.slice(at)}`
  const question = text.indexOf('?')
  if (question !== -1) text = `${text.slice(0, question)}?***`
  return text
}

/**
 * True when `raw` has an `@` after the first `/`, `?` or `#` that follows its scheme: a password
 * with one of those characters unencoded, which a URL parser reads as part of the path or query.
 */
export function hasAtAfterHost(raw: string): boolean {
  const rest = raw.replace(SCHEME, '')
  const delimiter = rest.search(/[/?#]/)
  return delimiter !== -1 && rest.indexOf('@', delimiter) !== -1
}

/** Removes credentials and every occurrence of the given secrets (for messages that quote them bare). */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = redactCredentials(text)
  for (const secret of secrets) {
    if (secret) out = out.split(secret).join('***')
  }
  return out
}

/** How many characters of a bad value an error quotes, quotes included. */
export const SHOWN_VALUE_CHARS = 60

/**
 * A bad value as an error message shows it. A string is quoted, with credentials removed, and cut
 * to SHOWN_VALUE_CHARS; anything else is named by its kind (a function, an object) or shown plain
 * (a number, a boolean), so no error ever prints a whole object or a long secret.
 */
export function shownValue(value: unknown): string {
  if (typeof value === 'string') {
    const text = JSON.stringify(redactCredentials(value))
    return text.length > SHOWN_VALUE_CHARS ? `${text.slice(0, SHOWN_VALUE_CHARS - 4)}..."` : text
  }
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'bigint') return `${value}n`
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

/** The message of an unknown thrown value, with credentials removed. */
export function describeError(error: unknown, secrets: readonly (string | undefined)[] = []): string {
  const message = error instanceof Error ? error.message : String(error)
  return redactSecrets(message, secrets)
}
