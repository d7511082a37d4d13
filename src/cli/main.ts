#!/usr/bin/env node
// iommu-arbiter: the command line, built on the client (src/client).
// Exit status: see output.ts (errno's number for a refusal, 2 for usage, 69
// when the server cannot be reached).
import { Command, CommanderError, Option } from "commander";
import { count, DEFAULT_URL, serverUrl } from "./context.js";
import { registerEvents } from "./events.js";
import { registerFaults } from "./faults.js";
import { registerHost } from "./host.js";
import { registerMoves } from "./moves.js";
import { EXIT_USAGE, failureReport } from "./output.js";
import { registerResources } from "./resources.js";
import { registerServe, serve } from "./serve.js";

export function program(): Command {
  const root = new Command("iommu-arbiter")
    .description("Client and server of the iommu-arbiter service")
    .exitOverride()
    .showHelpAfterError("(iommu-arbiter --help for usage)")
    .addOption(new Option("--url <url>", "the server").env("IOMMU_ARBITER_URL").default(DEFAULT_URL).argParser(serverUrl))
    .addOption(new Option("--token <token>", "bearer token").env("IOMMU_ARBITER_TOKEN"))
    .option("--json", "print JSON (one document, or one event per line) instead of tables", false)
    .addOption(new Option("--timeout <ms>", "ms each request may take").argParser(count).default(30_000))
    .addOption(new Option("--retries <n>", "retries after a connection failure or a busy server").argParser(count).default(3));
  registerServe(root);
  registerResources(root);
  registerMoves(root);
  registerFaults(root);
  registerEvents(root);
  registerHost(root);
  return root;
}

export async function main(argv: readonly string[]): Promise<number> {
  // Everything after `serve` is the server's, options included: commander never sees it.
  if (argv[0] === "serve") return serve(argv.slice(1));
  try {
    await program().parseAsync([...argv], { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end with 0; anything commander refused is a usage error.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    // Interrupted (Ctrl-C while waiting): no message, the conventional status.
    if (error instanceof Error && error.name === "AbortError") return 130;
    const { message, status } = failureReport(error);
    process.stderr.write(`iommu-arbiter: ${message}\n`);
    return status;
  }
}

process.exitCode = await main(process.argv.slice(2));
