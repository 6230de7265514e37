// @myqtt/storage-redis: the MyQtt storage backend on Redis (ioredis).

export { RedisStorage, type RedisStorageOptions } from "./redis-storage.js";
