import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { MappingFileSource } from '../mapping/load';

/**
 * The profiles shipped in `profiles/<name>/`: read from disk here; the bot build replaces this
 * module with one holding the same files (esbuild-script.mjs), as a bot has no repository.
 * Adding a profile, or a mapping to one, is adding files: nothing lists them.
 */
export function builtInProfileFiles(): Record<string, MappingFileSource[]> {
  const root = new URL('../../../profiles/', import.meta.url);
  const profiles: Record<string, MappingFileSource[]> = {};
  for (const name of readdirSync(root).sort()) {
    const folder = new URL(`${name}/`, root);
    if (!statSync(folder).isDirectory()) {
      continue;
    }
    profiles[name] = readdirSync(folder)
      .filter((file) => /\.(json|csv)$/i.test(file))
      .sort()
      .map((file) => ({ name: file, text: readFileSync(new URL(file, folder), 'utf8') }));
  }
  return profiles;
}
