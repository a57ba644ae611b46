/**
 * The job lease the master runs, sent with every assignment in a header (workers that predate it ignore it; the
 * assignment body's schema refuses unknown fields, so a field would have broken mixed-version fleets). A running
 * attempt's lease is renewed only by its progress events, so the worker reports at the cadence of the master's
 * lease, not of its own `TROUPE_JOB_LEASE_MS` — a master run with a shorter lease than its workers' used to take
 * every long job away from them while it ran.
 */
export const JOB_LEASE_HEADER = "Troupe-Job-Lease-Ms";

/** The master refuses a shorter `TROUPE_JOB_LEASE_MS`; so does the worker in the header. */
export const MIN_JOB_LEASE_MS = 100;

/** The lease in a header value, or why it is not one. Absent (undefined or "") is `{ ok: true, ms: undefined }`. */
export function parseJobLeaseHeader(value: string | undefined): { ok: true; ms: number | undefined } | { ok: false; message: string } {
  if (value === undefined || value === "") return { ok: true, ms: undefined };
  // Digits only (no sign, exponent or fraction), at most 15 so the number is exact.
  if (!/^[0-9]{1,15}$/.test(value)) return { ok: false, message: `header ${JOB_LEASE_HEADER}: ${JSON.stringify(value.slice(0, 40))} is not a whole number of milliseconds` };
  const ms = Number(value);
  if (ms < MIN_JOB_LEASE_MS) return { ok: false, message: `header ${JOB_LEASE_HEADER}: ${ms} ms is shorter than the least lease, ${MIN_JOB_LEASE_MS} ms` };
  return { ok: true, ms };
}

/**
 * How long before the master asked the worker its log stored the assignment (ms, on the server's clock): the master's
 * lease for the attempt runs from that stored `job.assigned`, and a worker that started its own count when it heard of
 * the assignment held later than the master gave the attempt away (longer still for an assignment whose append went
 * unacknowledged and was read back; a review). A duration, not a time: the two machines' clocks need not agree.
 */
export const ASSIGNED_AGE_HEADER = "Troupe-Assigned-Age-Ms";

/** The age in a header value, or why it is not one. Absent (undefined or "") is `{ ok: true, ms: undefined }`. */
export function parseAssignedAgeHeader(value: string | undefined): { ok: true; ms: number | undefined } | { ok: false; message: string } {
  if (value === undefined || value === "") return { ok: true, ms: undefined };
  if (!/^[0-9]{1,15}$/.test(value)) return { ok: false, message: `header ${ASSIGNED_AGE_HEADER}: ${JSON.stringify(value.slice(0, 40))} is not a whole number of milliseconds` };
  return { ok: true, ms: Number(value) };
}
