import { StateModel } from "./model.js";
import { Storage, type StorageOptions } from "./storage.js";
import type { StorageOp, StoredClient, StoredMessage, StoredState } from "./types.js";

/** The reference backend: everything in memory, nothing survives the process. */
export class MemoryStorage extends Storage {
  readonly kind = "memory";
  private readonly model = new StateModel();
  // A commit copies nothing and is done at once: nothing ever waits to be written.
  protected override countsPendingBytes = false;

  constructor(options: StorageOptions = {}) {
    super(options);
  }

  protected async doOpen(): Promise<void> {}

  protected async doClose(): Promise<void> {}

  protected async commit(ops: readonly StorageOp[]): Promise<void> {
    for (const op of ops) this.model.apply(op);
  }

  async readAll(): Promise<StoredState> {
    return this.model.state();
  }

  async readClient(clientId: string): Promise<StoredClient | null> {
    return this.model.client(clientId);
  }

  async readRetained(filter: string): Promise<StoredMessage[]> {
    return this.model.retainedMatching(filter);
  }
}
