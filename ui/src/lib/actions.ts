/** Calls an action endpoint of the REST API; resolves to the error message, or null on success. */
export async function postAction(path: string, body: unknown = {}): Promise<{ error: string | null; field?: string; data?: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    return { error: `request failed: ${(e as Error).message}` };
  }
  const data = (await res.json().catch(() => null)) as { success?: boolean; error?: { message: string; field?: string } } | null;
  if (res.ok && data?.success) return { error: null, data: data as Record<string, unknown> };
  return { error: data?.error?.message ?? `HTTP ${res.status}`, ...(data?.error?.field ? { field: data.error.field } : {}) };
}
