/**
 * A FIFO between producers and async consumers (MyQtt's MyQttAsyncQueue): `push` never blocks,
 * `pop` waits for an item, `timedpop` waits at most a number of microseconds.
 */
export class AsyncQueue<T> {
  private items: T[] = [];
  private head = 0;
  private readonly waiters: Array<(item: T) => void> = [];

  /** Items waiting to be popped. */
  get length(): number {
    return this.items.length - this.head;
  }

  /** Consumers waiting for an item. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Adds an item at the tail (or hands it to the longest waiting consumer). */
  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter(item);
    else this.items.push(item);
  }

  /** Adds an item at the head: it is the next one popped. */
  priorityPush(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter(item);
    } else if (this.head > 0) {
      this.items[--this.head] = item;
    } else {
      this.items.unshift(item);
    }
  }

  /** The next item, without waiting; undefined when empty. */
  tryPop(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head] as T;
    this.items[this.head++] = undefined as T;
    // Compact now and then so a long-lived queue does not keep a growing array.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    } else if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    }
    return item;
  }

  /** Waits for the next item. */
  pop(): Promise<T> {
    if (this.length > 0) return Promise.resolve(this.tryPop() as T);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Waits at most `microseconds` for the next item; null on timeout. */
  timedpop(microseconds: number): Promise<T | null> {
    if (this.length > 0) return Promise.resolve(this.tryPop() as T);
    return new Promise((resolve) => {
      const waiter = (item: T): void => {
        clearTimeout(timer);
        resolve(item);
      };
      const timer = setTimeout(
        () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          resolve(null);
        },
        // Node fires a longer delay than a 32-bit millisecond count after 1 ms.
        Math.min(Math.max(0, microseconds / 1000), 2_147_483_647),
      );
      this.waiters.push(waiter);
    });
  }

  /** Every queued item, oldest first, without removing them. */
  toArray(): T[] {
    return this.items.slice(this.head);
  }
}
