/** The flow columns (of the table aliased `t`) under the names `flowFromRow` reads. */
export function flowColumnsOf(t: string): string {
  return (
    `${t}.id, ${t}.controller_id AS "controllerId", ${t}.goal, ${t}.owner_session_key AS "ownerSessionKey", ${t}.requester_origin AS "requesterOrigin", ` +
    `${t}.current_step AS "currentStep", ${t}.state_json AS "stateJson", ${t}.wait_json AS "waitJson", ${t}.status, ${t}.cancel_requested AS "cancelRequested", ` +
    `${t}.revision, ${t}.idempotency_key AS "idempotencyKey", ${t}.wake_at AS "wakeAt", ${t}.wait_topic AS "waitTopic", ` +
    `${t}.wait_correlation_id AS "waitCorrelationId", ${t}.schedule_json AS "scheduleJson", ${t}.created_at AS "createdAt", ${t}.updated_at AS "updatedAt", ${t}.seq`
  );
}

/** The flow columns under the names `flowFromRow` reads. */
export const FLOW_COLUMNS = flowColumnsOf('flows');
