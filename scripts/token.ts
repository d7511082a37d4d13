// `npm run token -- --name vmm-a --role client`: a fresh bearer token for a
// client, and the entry to add to the token file's "tokens" array. The file
// holds only the digest; the token is printed once, here, and nowhere else.
import { parseArgs } from "node:util";
import { ConfigError } from "../src/config.js";
import { makeTokenEntry, ROLES } from "../src/http/tokens.js";

const USAGE = `Usage: npm run token -- --name NAME --role ${ROLES.join("|")}`;

function main(argv: string[]): number {
  let values: { name?: string; role?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { name: { type: "string" }, role: { type: "string" } }, strict: true }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.name === undefined || values.role === undefined) {
    console.error(USAGE);
    return 2;
  }
  try {
    const { token, entry } = makeTokenEntry(values.name, values.role);
    console.log(`token for ${entry.name} (shown once; give it to the client, keep it out of the token file):`);
    console.log(token);
    console.log(`entry for the "tokens" array of the token file (--tokens FILE or TOKENS):`);
    console.log(JSON.stringify(entry));
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`${error.message}\n${USAGE}`);
    return 2;
  }
}

process.exitCode = main(process.argv.slice(2));
