// @myqtt/storage: where a broker (and a client) keep what must outlive a connection or a restart.

export { ctxStorageLog } from "./ctx-log.js";
export { checkClientId, StorageError, type StorageErrorCode } from "./errors.js";
export { FileStorage, type FileStorageOptions } from "./file/file-storage.js";
export {
  StorageInflightStore,
  type StoredInflightEntry,
  type StoredOfflinePublish,
} from "./inflight-store.js";
export { MemoryStorage } from "./memory.js";
export { publishLength, Storage, type StorageOptions } from "./storage.js";
export type {
  Durability,
  StorageLog,
  StorageOp,
  StoredClient,
  StoredDelivery,
  StoredMessage,
  StoredSessionInfo,
  StoredState,
  StoredSubscription,
  StoredWill,
} from "./types.js";
