import type { LoadRequest } from './contract.js';

/**
 * The topic a commit's event id is looked up and remembered on
 * (`LoadRequest.eventId`, `Decision.rememberEventId`): the topic of
 * the event it delivers, `waitingOn`. Event ids are unique per topic, so two
 * producers that reuse an id on different topics never hide each other's
 * events. Throws when the load names no event (a planner's bug).
 */
export function seenTopicOf(load: LoadRequest): string {
  if (!load.waitingOn) throw new Error('an event id is seen and remembered only by a commit that delivers an event (waitingOn)');
  return load.waitingOn.topic;
}
