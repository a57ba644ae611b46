/**
 * The last sequence a reader following a stream can still reach: its last sequence, or 0 when it holds no message.
 * An emptied stream (heartbeats past their max age) keeps its last sequence but delivers nothing, so a fold whose
 * place is below it never reaches it: whatever waits for the fold to get there (the master before its silence-based
 * decisions, a dashboard page's catch-up) must not wait for that. Pure.
 */
export function streamHead(state: { messages: number; last_seq: number }): number {
  return state.messages > 0 ? state.last_seq : 0;
}
