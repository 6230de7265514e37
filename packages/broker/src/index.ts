// @myqtt/broker: an embeddable MQTT 3.1 / 3.1.1 / 5.0 broker steered by hooks on the Ctx.

export { Broker, type BrokerStats } from "./broker.js";
export {
  configureBroker,
  createListener,
  getBroker,
  Listener,
  type ListenerOptions,
  unlockListeners,
  waitListeners,
} from "./listener.js";
export type { BrokerMessage } from "./message.js";
export { type BrokerOptions, DEFAULT_OPTIONS } from "./options.js";
export { ConnState, ServerConn } from "./server-conn.js";
export type { Outgoing, Pending, Session, Subscription } from "./session.js";
