import type { Clock } from '../clock.js';
import type { Flow } from '../flow.js';
import type { EventKey, FlowStore } from '../store/contract.js';
import { DoctorContext, settings, uncoveredWhy, type DiagnoseOptions } from './diagnose.js';
import { nearMatch, type KeyDifference } from './similarity.js';
import { waitFacts } from './wait-facts.js';

const DIFFERENCE: Record<KeyDifference, string> = { case: 'differs only in case', whitespace: 'differs only in whitespace', typo: 'looks like a typo of it' };
const MAX_HINTS = 3;

/**
 * Why one waiting flow's wait looks stuck, in sentences a model (or a person) can
 * act on: a kept event for a key that nearly matches its own, a topic no running
 * NATS bridge covers, a due timer with no engine running, an old signal wait with
 * no timeout. Empty when nothing looks wrong (or the flow does not wait). The
 * tool's `status` action returns them as `warnings`.
 */
export async function waitWarnings(store: FlowStore, clock: Clock, flow: Flow, options?: DiagnoseOptions): Promise<string[]> {
  if (flow.status !== 'waiting' || !flow.wait) return [];
  const c = new DoctorContext(store, clock.now(), settings(options));
  const facts = waitFacts(flow.wait);
  const warnings: string[] = [];
  if (facts.eventKeys.length > 0) {
    const kept = await store.listInbox();
    for (const key of facts.eventKeys) {
      const near = kept.filter((k) => isNear(k, key)).slice(0, MAX_HINTS);
      for (const k of near) {
        const match = nearMatch(k.correlationId, key.correlationId) ?? nearMatch(k.topic, key.topic)!;
        warnings.push(
          `no event has arrived for ${show(key)}; ${k.events} event(s) are kept for ${show(k)}, which ${DIFFERENCE[match.difference]}: did you mean correlation_id "${k.correlationId}" on topic "${k.topic}"? If so, cancel this flow and start a new one that waits on that key (a wait on a key with a kept event resumes at once), or ask the operator to deliver the event again on ${show(key)}`,
        );
      }
      const why = await uncoveredWhy(c, key.topic);
      if (why !== undefined) {
        warnings.push(`no event on topic "${key.topic}" can reach this flow: ${why}. Ask the operator to cover the topic, or wait with a timeout so the flow does not wait forever`);
      }
    }
  }
  if (facts.wakeAt !== undefined && facts.wakeAt.getTime() <= c.now && (await c.liveEngines()).length === 0) {
    warnings.push(`its ${facts.eventKeys.length > 0 || facts.signal ? 'timeout' : 'timer'} was due at ${facts.wakeAt.toISOString()}, but no engine is running to resume it; it resumes as soon as the host starts one`);
  }
  if (facts.signal && facts.wakeAt === undefined && facts.eventKeys.length === 0 && flow.updatedAt.getTime() <= c.now - c.settings.manualWaitAge) {
    warnings.push(`it has waited for a signal since ${flow.updatedAt.toISOString()} with no timeout: only that signal resumes it. If it may never come, wait again with timeout_in, or cancel the flow`);
  }
  return warnings;
}

function isNear(kept: EventKey, key: EventKey): boolean {
  if (kept.topic === key.topic && kept.correlationId === key.correlationId) return false;
  const topic = kept.topic === key.topic ? 0 : nearMatch(kept.topic, key.topic)?.distance;
  const id = kept.correlationId === key.correlationId ? 0 : nearMatch(kept.correlationId, key.correlationId)?.distance;
  return topic !== undefined && id !== undefined && topic + id <= 2;
}

function show(key: EventKey): string {
  return `${key.topic}/${key.correlationId}`;
}
