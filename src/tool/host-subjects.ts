import type { NatsBridgeStatus } from '../runtime/nats/options.js';

/** What the host declared on its NATS bridge that bounds the tool's event waits. */
export interface BridgeDeclaration {
  /** `nats.subjects`: the patterns the host chose to carry. */
  subjects: readonly string[];
  /** `nats.resumeSubject` when the host set its own (the default lies under `taskflow.…`, reserved anyway). */
  resumeSubject?: string;
}

/** Reads the declaration from `tf.bridge` (its public accessors); undefined without a bridge. */
export function bridgeDeclaration(tf: { readonly bridge?: NatsBridgeStatus | undefined }): BridgeDeclaration | undefined {
  const bridge = tf.bridge;
  if (!bridge) return undefined;
  return { subjects: bridge.declaredSubjects, resumeSubject: bridge.resumeSubject };
}
