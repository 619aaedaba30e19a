import type { Resource } from '@medplum/fhirtypes';

/** One step into a resource: a member name or an array position. */
export type JsonStep = string | number;

/** A `reference` found in a resource: where (the Reference element's path) and what it says. */
export interface FoundReference {
  /** Steps to the Reference element (the object holding `reference`). */
  steps: JsonStep[];
  /** The element as reports name it: `subject`, `performer[0].actor`. */
  element: string;
  reference: string;
}

/** Every `reference` string in a resource, with the path of its Reference element. */
export function referencesIn(resource: Resource): FoundReference[] {
  const found: FoundReference[] = [];
  const visit = (value: unknown, steps: JsonStep[]): void => {
    if (Array.isArray(value)) {
      value.forEach((member, index) => visit(member, [...steps, index]));
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, member] of Object.entries(value)) {
        if (key === 'reference' && typeof member === 'string') {
          found.push({ steps, element: elementText(steps), reference: member });
        } else {
          visit(member, [...steps, key]);
        }
      }
    }
  };
  visit(resource, []);
  return found;
}

/** The `reference` at a Reference element's path in a stored resource, if there is one. */
export function referenceAt(resource: Resource, steps: readonly JsonStep[]): string | undefined {
  let value: unknown = resource;
  for (const step of steps) {
    if (typeof value !== 'object' || value === null) {
      return undefined;
    }
    value = (value as Record<string | number, unknown>)[step];
  }
  const reference = (value as { reference?: unknown } | undefined)?.reference;
  return typeof reference === 'string' ? reference : undefined;
}

/** `name[0].given` for steps `['name', 0, 'given']`. */
export function elementText(steps: readonly JsonStep[]): string {
  let text = '';
  for (const step of steps) {
    text += typeof step === 'number' ? `[${step}]` : text ? `.${step}` : step;
  }
  return text;
}

