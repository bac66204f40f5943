// ESO renders target.template.data with Go templates (text/template plus
// Sprig); secretsync's templates are logic-less mustache (docs/api.md). The
// only Go templates with the same meaning in mustache are the ones that place
// a value as it is: `{{ .name }}`, `{{ index . "key" }}`, optionally piped
// through `toString`. Everything else (functions, conditions, loops, whitespace
// trimming) has no safe equivalent, so it is reported for a person to rewrite
// rather than guessed at.

/** A Go template action content that places one value: its value name, or undefined. */
function placedName(action: string): string | undefined {
  // `| toString` is the identity on ESO v2's string values.
  const body = action.replace(/\s*\|\s*toString\s*$/, '').trim();
  const field = /^\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(body);
  if (field) return field[1];
  const indexed = /^index\s+\.\s+(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)$/.exec(body);
  if (indexed) {
    const name = indexed[1] !== undefined ? (JSON.parse(`"${indexed[1]}"`) as string) : (indexed[2] ?? '');
    return /^[-._a-zA-Z0-9]+$/.test(name) ? name : undefined;
  }
  return undefined;
}

export type TemplateConversion = { ok: true; mustache: string } | { ok: false; unsupported: string };

/**
 * The mustache template that renders what the Go template does, or the first
 * action it cannot carry over (quoted in the report: templates are spec, not
 * secret values). Literal text is kept byte for byte.
 */
export function goTemplateToMustache(template: string): TemplateConversion {
  let out = '';
  let rest = template;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open < 0) break;
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) return { ok: false, unsupported: 'an unclosed {{' };
    const action = rest.slice(open + 2, close);
    if (action.startsWith('-') || action.endsWith('-'))
      return { ok: false, unsupported: `{{${action}}} (whitespace trimming)` };
    const name = placedName(action.trim());
    if (name === undefined) return { ok: false, unsupported: `{{${action}}}` };
    out += rest.slice(0, open) + `{{${name}}}`;
    rest = rest.slice(close + 2);
  }
  // Literal text holds no `{{` (Go would have read it as an action), so mustache reads it as text too.
  return { ok: true, mustache: out + rest };
}
