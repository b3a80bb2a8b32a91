/**
 * `nexo-taskflow/ui`: the web inspector, for hosts that want it inside their
 * process. `taskflow ui` runs the same thing from the command line.
 */
export { startInspector, type Inspector, type InspectorOptions } from './inspector.js';
export { hintKey, type KeyHints } from './waits-page.js';
