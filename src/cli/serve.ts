// `iommu-arbiter serve`: the service itself, started exactly as `npm start`,
// the Docker image and the tests start it, through bin/iommu-arbiter-server
// (the one place for its node flags and malloc settings). Every argument
// after `serve` goes to the server (`iommu-arbiter serve --help` lists them).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";

const LAUNCHER = fileURLToPath(new URL("../../bin/iommu-arbiter-server", import.meta.url));

/** Run the launcher in the foreground; resolves with the exit status to end with. */
export function serve(args: readonly string[]): Promise<number> {
  const child = spawn(LAUNCHER, args, { stdio: "inherit" });
  // The terminal's Ctrl-C reaches the child by itself (same process group); a kill aimed at this process is passed on.
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGINT" ? 2 : 15));
    });
  });
}

export function registerServe(program: Command): void {
  program.command("serve").description("run the service (as npm start does); arguments go to the server, see serve --help")
    .helpOption(false).allowUnknownOption().allowExcessArguments()
    .argument("[args...]", "server flags");
  // main.ts runs it before commander parses anything, so that the server's flags reach it untouched.
}
