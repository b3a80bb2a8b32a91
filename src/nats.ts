/**
 * `nexo-taskflow/nats`: the NATS bridge itself, for hosts that wire it by hand.
 * `openTaskflow({ nats })` needs nothing from here. Needs the optional peers
 * `@nats-io/transport-node` and `@nats-io/jetstream`.
 */
export {
  NatsBridge,
  type NatsBridgeEvents,
  type NatsBridgeState,
  type TopicRefusal,
  type NatsBridgeMode,
  type NatsBridgeOptions,
  type NatsBridgeRuntime,
  type NatsBridgeStatus,
  type NatsConnectionOptions,
  type NatsOptions,
} from './runtime/nats/bridge.js';
