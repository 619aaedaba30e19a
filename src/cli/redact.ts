/**
 * URLs as the commands print them: without credentials. A MEDPLUM_BASE_URL may carry a user and
 * password (`https://user:secret@host/`) or a token in its query string, and errors from fetch
 * repeat the URL they were given ("Request cannot be constructed from a URL that includes
 * credentials: https://user:secret@host/oauth2/token"). Everything a command prints about a
 * server goes through here.
 */

const HIDDEN = '***';

/**
 * Absolute URLs inside a text: scheme, optional userinfo (up to the last `@` before the path),
 * then the rest up to whitespace or a quote. The query string, if any, is the part after `?`.
 */
const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)(?:([^\s/?#'"`<>]*)@)?([^\s?#'"`<>]*)(\?[^\s#'"`<>]*)?/gi;

/** The URL with its userinfo and query string replaced by `***` (so the reader sees they were there). */
export function redactUrl(url: string): string {
  return redactUrls(url);
}

/**
 * The text with every URL in it redacted, and with each of `known` (e.g. the configured base URL,
 * which might be malformed enough to escape the pattern) replaced by its redacted form first.
 */
export function redactUrls(text: string, known: readonly (string | undefined)[] = []): string {
  let result = text;
  for (const raw of known) {
    if (raw && result.includes(raw)) {
      result = result.split(raw).join(redactLoosely(raw));
    }
  }
  return result.replace(URL_IN_TEXT, (_match, scheme: string, userinfo: string | undefined, rest: string, query: string | undefined) => {
    return `${scheme}${userinfo !== undefined ? `${HIDDEN}@` : ''}${rest}${query !== undefined ? `?${HIDDEN}` : ''}`;
  });
}

/**
 * Redaction of one configured URL that does not have to parse: everything between `://` and the
 * last `@` is userinfo (a password may hold `/` or `@`), everything after the first `?` is query.
 */
function redactLoosely(raw: string): string {
  let value = raw;
  const query = value.indexOf('?');
  if (query >= 0) {
    value = `${value.slice(0, query)}?${HIDDEN}`;
  }
  const schemeEnd = value.indexOf('://');
  const at = value.lastIndexOf('@');
  if (schemeEnd >= 0 && at > schemeEnd) {
    value = `${value.slice(0, schemeEnd + 3)}${HIDDEN}${value.slice(at)}`;
  }
  return value;
}
