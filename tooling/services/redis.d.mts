import type { ChildProcess } from "node:child_process";

export interface RunningRedis {
  port: number;
  url: string;
  process: ChildProcess;
  /** SIGTERM, then waits for the exit (SIGKILL after 5 s); removes its directory. */
  stop(): Promise<void>;
}

/** The redis-server binary (MYQTT_REDIS_SERVER when set, else searched), or null. */
export declare function findRedisServer(): string | null;
/** Why Redis tests cannot run here, or null; throws when MYQTT_REQUIRE_SERVICES=1. */
export declare function redisUnavailable(): string | null;
/** Starts redis-server on a free port of 127.0.0.1; `extraArgs` go on its command line. */
export declare function startRedis(extraArgs?: string[]): Promise<RunningRedis>;
