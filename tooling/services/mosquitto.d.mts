import type { ChildProcess } from "node:child_process";

export interface RunningMosquitto {
  port: number;
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** The mosquitto binary, or null when it is not installed. */
export declare function findMosquitto(): string | null;
/** A free TCP port on 127.0.0.1. */
export declare function freePort(): Promise<number>;
/** Starts Mosquitto on `port` (for tests that restart it on the same port). */
export declare function startMosquittoOn(
  port: number,
  extraConfig?: string[],
): Promise<RunningMosquitto>;
/** Starts Mosquitto on a free port; throws a clear error when it is not installed. */
export declare function startMosquitto(extraConfig?: string[]): Promise<RunningMosquitto>;
