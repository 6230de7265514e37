import type { Ctx } from "./ctx.js";

/**
 * Runs every `period` microseconds until it returns true (or a promise of true). An error thrown
 * by the handler is logged and the event keeps running.
 */
export type EventHandler<D1 = unknown, D2 = unknown> = (
  ctx: Ctx,
  data1: D1,
  data2: D2,
) => boolean | undefined | Promise<boolean | undefined>;

interface TimedEvent {
  timer: ReturnType<typeof setTimeout> | null;
  removed: boolean;
}

/** The periodic events of one context (MyQtt's thread pool events). */
export class TimedEvents {
  private readonly events = new Map<number, TimedEvent>();
  private nextId = 1;

  constructor(
    private readonly ctx: Ctx,
    private readonly onError: (error: unknown) => void,
  ) {}

  get size(): number {
    return this.events.size;
  }

  add<D1, D2>(microseconds: number, handler: EventHandler<D1, D2>, data1: D1, data2: D2): number {
    if (!Number.isFinite(microseconds) || microseconds < 0) {
      throw new RangeError(
        `event period must be a non-negative number of microseconds, got ${microseconds}`,
      );
    }
    const id = this.nextId++;
    const event: TimedEvent = { timer: null, removed: false };
    const ms = Math.max(1, Math.round(microseconds / 1000));
    // The next run is scheduled only after this one finished: a slow async handler never overlaps itself.
    const tick = async (): Promise<void> => {
      event.timer = null;
      let stop = false;
      try {
        stop = (await handler(this.ctx, data1, data2)) === true;
      } catch (error) {
        this.onError(error);
      }
      if (stop) this.remove(id);
      else if (!event.removed) event.timer = setTimeout(tick, ms);
    };
    event.timer = setTimeout(tick, ms);
    this.events.set(id, event);
    return id;
  }

  remove(id: number): boolean {
    const event = this.events.get(id);
    if (event === undefined) return false;
    event.removed = true;
    if (event.timer !== null) clearTimeout(event.timer);
    this.events.delete(id);
    return true;
  }

  clear(): void {
    for (const id of [...this.events.keys()]) this.remove(id);
  }
}
