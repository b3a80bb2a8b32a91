/**
 * Which topics a binding lets a model wait on, and how per-session templates
 * (`tenants.{tenant}.payments.>`) are filled in. The subject grammar is the
 * bridge's own (`runtime/nats/subject.ts`). Pure: no I/O.
 */
import { concreteTopicProblem, subjectMatches, topicPatternProblem } from '../runtime/nats/subject.js';

/**
 * Where an event wait's topic must lie: the declared patterns (from the binding,
 * possibly with placeholders, or the NATS bridge's `subjects`), any topic (the
 * host widened it explicitly), or nowhere (the host declared nothing).
 */
export type TopicPolicy =
  | { kind: 'patterns'; source: 'binding' | 'bridge'; templates: readonly string[]; placeholders: readonly string[] }
  | { kind: 'any' }
  | { kind: 'none' };

/** A policy with this call's values filled in: concrete patterns to match a topic against. */
export type FilledTopicPolicy = { kind: 'patterns'; patterns: readonly string[]; values: Readonly<Record<string, string>> } | { kind: 'any' } | { kind: 'none' };

/** The placeholder every binding has: the resolved owner session key. */
export const OWNER_PLACEHOLDER = 'owner';

const PLACEHOLDER = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const PLACEHOLDER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Subjects no event wait may use, whatever the binding says: `$…` (JetStream and
 * system APIs), `_INBOX…` (request/reply inboxes) and `taskflow.…` (the runtime's
 * own resume and lifecycle subjects). Capturing them would break the bus.
 */
export const RESERVED_TOPICS = '$…, _INBOX… and taskflow.…';

/** Whether `name` can name a placeholder (`tenant`, `org_id`). */
export function isPlaceholderName(name: string): boolean {
  return PLACEHOLDER_NAME.test(name);
}

/** The placeholder names a template uses, in order of appearance. */
export function placeholdersOf(template: string): string[] {
  return template.split('.').flatMap((token) => {
    const match = PLACEHOLDER.exec(token);
    return match ? [match[1]!] : [];
  });
}

/**
 * Why `template` is not a usable topic pattern, or `undefined`. Placeholders
 * must be whole tokens naming a known value: inside a token (`t-{tenant}`) two
 * tenants could fill in the same subject (`t-{a}` with `b-c`, `t-{a}-{b}`...).
 */
export function templateProblem(template: string, known: ReadonlySet<string>): string | undefined {
  if (typeof template !== 'string') return 'a topic pattern must be a string';
  for (const token of template.split('.')) {
    const match = PLACEHOLDER.exec(token);
    if (match) {
      if (!known.has(match[1]!)) return `topic pattern "${template}" uses {${match[1]}}, which is neither {owner} nor a name in binding.scope`;
    } else if (/[{}]/.test(token)) {
      return `topic pattern "${template}": a placeholder must be a whole token, such as tenants.{tenant}.payments.>`;
    }
  }
  return topicPatternProblem(fill(template, (name) => name));
}

/** Why `value` cannot fill a placeholder (it must be exactly one subject token), or `undefined`. */
export function tokenValueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return 'is missing';
  if (value.includes('.') || concreteTopicProblem(value) !== undefined) return `"${value}" is not one subject token (no dots, wildcards or whitespace)`;
  return undefined;
}

/** Replaces each whole-token placeholder whose name `value` knows; other tokens stay as they are. */
export function fill(template: string, value: (name: string) => string | undefined): string {
  return template
    .split('.')
    .map((token) => {
      const match = PLACEHOLDER.exec(token);
      return match ? (value(match[1]!) ?? token) : token;
    })
    .join('.');
}

/** Fills a policy's templates with this call's values (which must cover every placeholder). */
export function fillPolicy(policy: TopicPolicy, values: Readonly<Record<string, string>>): FilledTopicPolicy {
  if (policy.kind !== 'patterns') return policy;
  return { kind: 'patterns', patterns: policy.templates.map((t) => fill(t, (name) => values[name])), values };
}

/** Why `topic` is reserved (see {@link RESERVED_TOPICS}), or `undefined`. `extra` adds the host's own runtime subjects. */
export function reservedTopicProblem(topic: string, extra: readonly string[] = []): string | undefined {
  const first = topic.split('.')[0] ?? '';
  if (first.startsWith('$')) return 'starts with "$": subjects of the NATS server and JetStream APIs cannot be waited on';
  if (first.startsWith('_INBOX')) return 'is a request/reply inbox (_INBOX…): it cannot be waited on';
  if (subjectMatches('taskflow.>', topic) || extra.includes(topic)) return 'is one of the runtime\'s own subjects (taskflow.…): it cannot be waited on';
  return undefined;
}

/** Whether `topic` lies inside the filled policy. */
export function topicInPolicy(policy: FilledTopicPolicy, topic: string): boolean {
  if (policy.kind === 'any') return true;
  if (policy.kind === 'none') return false;
  return policy.patterns.some((pattern) => subjectMatches(pattern, topic));
}

/** The sentence of the tool description that tells a model which topics it may wait on. */
export function describeTopicPolicy(policy: TopicPolicy): string {
  if (policy.kind === 'none') return 'Event waits (external_event) are not available here; use timer or manual waits.';
  if (policy.kind === 'any') return `Event waits may use any topic except ${RESERVED_TOPICS}.`;
  const line = `Event waits may only use topics matching: ${policy.templates.join(', ')}.`;
  if (policy.placeholders.length === 0) return line;
  const names = policy.placeholders.map((name) => `{${name}}`).join(', ');
  return `${line} Write ${names} as it stands in the topic: the tool fills in your own value.`;
}
