import { fail, redirect } from "@sveltejs/kit";
import { tokenMatches, TOKEN_COOKIE } from "$lib/server/auth.ts";
import { context } from "$lib/server/context.ts";
import { safeNext } from "$lib/server/safe-next.ts";
import type { Actions, PageServerLoad } from "./$types";

export const load: PageServerLoad = ({ url }) => ({ next: url.searchParams.get("next") ?? "/", enabled: Boolean(context().cfg.token) });


export const actions: Actions = {
  default: async ({ request, cookies, url }) => {
    const { cfg } = context();
    if (!cfg.token) redirect(303, "/");
    // A body that is no form (a wrong content type, broken multipart) is the sender's error: it was a 500 with a
    // stack trace in the log for anyone to repeat (a review).
    let form: FormData;
    try {
      form = await request.formData();
    } catch (e) {
      return fail(400, { error: `not a login form: ${(e as Error).message}` });
    }
    const token = form.get("token");
    if (typeof token !== "string" || !tokenMatches(token, cfg.token)) return fail(401, { error: "wrong token" });
    cookies.set(TOKEN_COOKIE, token, { path: "/", httpOnly: true, sameSite: "strict", secure: url.protocol === "https:", maxAge: 7 * 24 * 3600 });
    redirect(303, safeNext(form.get("next")));
  },
};
