import type { Wake } from '../wake.js';

/** A queued resume notification as operators see it (`taskflow show`, `taskflow list --dead`). */
export interface ResumeNotification {
  id: number;
  flowId: string;
  wake: Wake;
  /** Next delivery time: when queued, the lease end while claimed, the retry time after a failure. */
  dueAt: Date;
  /** Deliveries started so far (claims). */
  attempts: number;
  /** The handler's last failure, if any. */
  lastError: string | null;
  /** When it was parked as dead (after `maxResumeAttempts`); a dead notification is never claimed. */
  deadAt: Date | null;
  createdAt: Date;
}
