import type { NatsOptions } from '../runtime/nats-bridge.js';

/** What the host declared on its NATS bridge that bounds the tool's event waits. */
export interface BridgeDeclaration {
  /** `nats.subjects`: the patterns the host chose to carry. */
  subjects: readonly string[];
  /** `nats.resumeSubject` when the host set its own (the default lies under `taskflow.…`, reserved anyway). */
  resumeSubject?: string;
}

/**
 * Reads the declaration from `tf.bridge`; undefined without a bridge. The one
 * place that reaches into the bridge: it reads the options the bridge was built
 * with (its `subjects` getter replaces this once the bridge has one).
 */
export function bridgeDeclaration(tf: { readonly bridge?: unknown }): BridgeDeclaration | undefined {
  const bridge = tf.bridge as { readonly options?: Partial<NatsOptions> } | undefined;
  const options = bridge?.options;
  if (!options) return undefined;
  const subjects = Array.isArray(options.subjects) ? options.subjects.filter((s): s is string => typeof s === 'string') : [];
  const declaration: BridgeDeclaration = { subjects };
  if (typeof options.resumeSubject === 'string') declaration.resumeSubject = options.resumeSubject;
  return declaration;
}
