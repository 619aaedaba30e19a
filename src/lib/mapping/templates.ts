import { normalizeColumnName } from '../tables/columns';

/** What a template reads from a row. */
export interface TemplateCells {
  /** The trimmed cell of a (normalised) column, '' when empty. */
  cell(column: string): string;
  /** The row key (`{$key}`). */
  key(): string;
  /** The identifier base setting (`{$base}`). */
  readonly base: string;
}

export interface Template {
  readonly text: string;
  /** Columns it names (normalised), in order of first use. */
  readonly columns: readonly string[];
  readonly usesKey: boolean;
  readonly usesBase: boolean;
  /** No variables at all. */
  readonly constant: boolean;
  /** The text with the cells put in; '' when any named cell (or the key) is empty. */
  render(cells: TemplateCells): string;
}

type Part = { literal: string } | { column: string } | { variable: '$key' | '$base' };

/**
 * Parses `text {COLUMN} more {$base}`: `{name}` is a cell (names as in the header: case, spaces
 * and hyphens do not matter), `{$base}` the identifier base and `{$key}` the row key; `{{` and `}}`
 * are literal braces. `known` says which columns the mapping declares.
 */
export function compileTemplate(text: string, known: (column: string) => boolean): Template | { error: string } {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if ((char === '{' || char === '}') && text[i + 1] === char) {
      literal += char;
      i++;
      continue;
    }
    if (char === '}') {
      return { error: `unmatched '}' in template "${text}" (write '}}' for a literal brace)` };
    }
    if (char !== '{') {
      literal += char;
      continue;
    }
    const end = text.indexOf('}', i);
    if (end < 0) {
      return { error: `unclosed '{' in template "${text}"` };
    }
    const name = text.slice(i + 1, end).trim();
    if (literal) {
      parts.push({ literal });
      literal = '';
    }
    if (name === '$key' || name === '$base') {
      parts.push({ variable: name });
    } else if (name.startsWith('$')) {
      return { error: `unknown variable {${name}} in template "${text}" (there are {$base} and {$key})` };
    } else {
      const column = normalizeColumnName(name);
      if (!column) {
        return { error: `empty {} in template "${text}"` };
      }
      if (!known(column)) {
        return { error: `template "${text}" names column '${column}', which is not declared in "columns"` };
      }
      parts.push({ column });
    }
    i = end;
  }
  if (literal) {
    parts.push({ literal });
  }
  return makeTemplate(text, parts);
}

function makeTemplate(text: string, parts: Part[]): Template {
  const columns = [...new Set(parts.flatMap((p) => ('column' in p ? [p.column] : [])))];
  const usesKey = parts.some((p) => 'variable' in p && p.variable === '$key');
  const usesBase = parts.some((p) => 'variable' in p && p.variable === '$base');
  const constant = parts.every((p) => 'literal' in p);
  // Hot path: a single cell, or a constant, without the general loop.
  const only = parts.length === 1 ? parts[0] : undefined;
  let render: (cells: TemplateCells) => string;
  if (constant) {
    const value = parts.map((p) => ('literal' in p ? p.literal : '')).join('');
    render = () => value;
  } else if (only && 'column' in only) {
    const column = only.column;
    render = (cells) => cells.cell(column);
  } else {
    render = (cells) => {
      let out = '';
      for (const part of parts) {
        const value =
          'literal' in part ? part.literal : 'column' in part ? cells.cell(part.column) : part.variable === '$key' ? cells.key() : cells.base;
        if (!value) {
          return '';
        }
        out += value;
      }
      return out;
    };
  }
  return { text, columns, usesKey, usesBase, constant, render };
}
