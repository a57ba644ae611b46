import { fail, redirect } from "@sveltejs/kit";
import { tokenMatches, TOKEN_COOKIE } from "$lib/server/auth.ts";
import { context } from "$lib/server/context.ts";
import { safeNext } from "$lib/server/safe-next.ts";
import type { Actions, PageServerLoad } from "./$types";

export const load: PageServerLoad = ({ url }) => ({ next: url.searchParams.get("next") ?? "/", enabled: Boolean(context().cfg.token) });


export const actions: Actions = {
  default: async ({ request, cookies, url }) => {
    const { cfg } = context();
    const form = await request.formData();
    const token = form.get("token");
    if (!cfg.token) redirect(303, "/");
    if (typeof token !== "string" || !tokenMatches(token, cfg.token)) return fail(401, { error: "wrong token" });
    cookies.set(TOKEN_COOKIE, token, { path: "/", httpOnly: true, sameSite: "strict", secure: url.protocol === "https:", maxAge: 7 * 24 * 3600 });
    redirect(303, safeNext(form.get("next")));
  },
};
