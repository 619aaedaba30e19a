import type { PathStep } from '../tables/types';

/** One step of an element path as the body builder needs it. */
export type BodyStep = PathStep;

type Json = Record<string, unknown>;

/**
 * Sets a value at a path, creating objects and arrays on the way. A repeating element at the end
 * of the path without an index takes an array value as the whole list, any other value at 0.
 */
export function setAt(body: Json, steps: readonly BodyStep[], value: unknown): void {
  let target = body;
  const last = steps.length - 1;
  for (let i = 0; i < last; i++) {
    const step = steps[i];
    if (step.isArray) {
      const list = ((target[step.name] as unknown[] | undefined) ??= []);
      const at = step.index ?? 0;
      target = (list[at] ??= {}) as Json;
    } else {
      target = (target[step.name] ??= {}) as Json;
    }
  }
  const step = steps[last];
  if (!step.isArray) {
    target[step.name] = value;
  } else if (step.index === undefined && Array.isArray(value)) {
    target[step.name] = value;
  } else {
    const list = ((target[step.name] as unknown[] | undefined) ??= []);
    list[step.index ?? 0] = value;
  }
}

/**
 * Removes what a row left empty: holes in arrays (an element at index 1 with nothing at 0),
 * and objects or arrays with nothing in them. Returns undefined when nothing is left.
 */
export function compact(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = [];
    for (const item of value) {
      const kept = compact(item);
      if (kept !== undefined) {
        items.push(kept);
      }
    }
    return items.length ? items : undefined;
  }
  if (typeof value === 'object' && value !== null) {
    let empty = true;
    const object = value as Json;
    for (const key of Object.keys(object)) {
      const kept = compact(object[key]);
      if (kept === undefined) {
        delete object[key];
      } else {
        object[key] = kept;
        empty = false;
      }
    }
    return empty ? undefined : object;
  }
  return value === '' ? undefined : value;
}
