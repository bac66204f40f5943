import Mustache from 'mustache';
import { SecretsyncError } from '../api/errors.js';

/** A template that does not parse; the message names the target key, never a value. */
export class TemplateError extends SecretsyncError {
  constructor(message: string) {
    super('InvalidTemplate', 'terminal', message);
    this.name = 'TemplateError';
  }
}

/**
 * Looks names up as whole keys first: Secret keys such as `tls.crt` contain dots,
 * which mustache would otherwise read as "field crt of tls". The view has no
 * prototype, so names like `constructor` render empty like any missing value.
 */
class FlatContext extends Mustache.Context {
  private readonly flat: Record<string, string>;

  constructor(values: Record<string, string>) {
    const view: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, values);
    super(view);
    this.flat = view;
  }

  override lookup(name: string): unknown {
    if (Object.prototype.hasOwnProperty.call(this.flat, name)) return this.flat[name];
    return super.lookup(name);
  }
}

/**
 * Renders `target.template.data` with mustache: logic-less, so a template can
 * place values but never run code. Values are inserted as they are (no HTML
 * escaping); partials are not available.
 */
export function renderTemplates(
  templates: Record<string, string>,
  values: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, template] of Object.entries(templates)) {
    try {
      Mustache.parse(template);
    } catch (err) {
      // mustache's parse errors describe the template's structure, not the values.
      const detail = err instanceof Error ? err.message.split('\n')[0] : 'parse error';
      throw new TemplateError(`template for key "${key}" is invalid: ${detail}`);
    }
    out[key] = Mustache.render(template, new FlatContext(values), {}, { escape: (s: string) => s });
  }
  return out;
}
