import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { firstError, type FieldError } from "./errors.ts";

/**
 * Scenario = a JSON step list. Steps from Chrome DevTools Recorder exports
 * (Puppeteer Replay's format) are accepted as exported; Troupe adds its own steps.
 * Every step may carry `timeout` (ms) and `optional`.
 */

const Timeout = Type.Integer({ minimum: 1, maximum: 600_000, description: "step timeout in ms" });
/** Pixel offsets and scroll positions: far beyond any real page, but finite (1e308 reaches Chromium otherwise). */
const Pixels = (description: string, max = 1_000_000) => Type.Number({ minimum: -max, maximum: max, description });
/** Fields every step may have. Recorder steps also carry `target`, `frame`, `assertedEvents`. */
const common = {
  timeout: Type.Optional(Timeout),
  optional: Type.Optional(Type.Boolean({ description: "a failing optional step is logged, the job goes on" })),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  target: Type.Optional(Type.String({ maxLength: 200, description: "Recorder: the page the step runs in; only \"main\" is run (jobs.submit refuses others: validateTargets; a worker fails a job with one before its first step)" })),
  frame: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 10_000 }), { maxItems: 32 })),
  assertedEvents: Type.Optional(Type.Array(Type.Object({ type: Type.String(), url: Type.Optional(Type.String()), title: Type.Optional(Type.String()) }), { maxItems: 16 })),
};
const Selector = Type.String({ minLength: 1, maxLength: 2000 });
/** Recorder selectors: alternatives, each a string or a chain through shadow roots / frames. */
const Selectors = Type.Array(Type.Union([Selector, Type.Array(Selector, { minItems: 1, maxItems: 16 })]), {
  minItems: 1,
  maxItems: 32,
});
const HttpUrl = Type.String({ minLength: 1, maxLength: 4096, pattern: "^https?://", description: "http(s) URL" });

function step<T extends string, P extends Record<string, TSchema>>(type: T, props: P, description: string) {
  return Type.Object({ type: Type.Literal(type), ...common, ...props }, { additionalProperties: false, description });
}

/** What a Recorder click or double-click carries. */
const pointerProps = {
    selectors: Selectors,
    offsetX: Type.Optional(Pixels("px from the element's left edge")),
    offsetY: Type.Optional(Pixels("px from the element's top edge")),
    button: Type.Optional(Type.Union([Type.Literal("primary"), Type.Literal("auxiliary"), Type.Literal("secondary"), Type.Literal("back"), Type.Literal("forward")])),
    deviceType: Type.Optional(Type.Union([Type.Literal("mouse"), Type.Literal("pen"), Type.Literal("touch")])),
    duration: Type.Optional(Type.Number({ minimum: 0, maximum: 600_000, description: "ms the button is held" })),
};

export const StepSchemas = {
  // --- Chrome DevTools Recorder / Puppeteer Replay steps ---
  setViewport: step("setViewport", {
    width: Type.Integer({ minimum: 1, maximum: 10000 }),
    height: Type.Integer({ minimum: 1, maximum: 10000 }),
    deviceScaleFactor: Type.Number({ minimum: 0.1, maximum: 10 }),
    isMobile: Type.Boolean(),
    hasTouch: Type.Boolean(),
    isLandscape: Type.Boolean(),
  }, "Recorder: set the viewport"),
  navigate: step("navigate", { url: HttpUrl }, "Recorder: go to a URL"),
  click: step("click", pointerProps, "Recorder: click an element"),
  doubleClick: step("doubleClick", pointerProps, "Recorder: double-click an element"),
  hover: step("hover", { selectors: Selectors }, "Recorder: hover an element"),
  change: step("change", { selectors: Selectors, value: Type.String({ maxLength: 100_000 }) }, "Recorder: set an input's value"),
  keyDown: step("keyDown", { key: Type.String({ minLength: 1, maxLength: 64 }) }, "Recorder: press a key down"),
  keyUp: step("keyUp", { key: Type.String({ minLength: 1, maxLength: 64 }) }, "Recorder: release a key"),
  scroll: step("scroll", {
    selectors: Type.Optional(Selectors),
    x: Type.Optional(Pixels("scroll position in px", 100_000_000)),
    y: Type.Optional(Pixels("scroll position in px", 100_000_000)),
  }, "Recorder: scroll the page or an element"),
  waitForElement: step("waitForElement", {
    selectors: Selectors,
    operator: Type.Optional(Type.Union([Type.Literal(">="), Type.Literal("=="), Type.Literal("<=")])),
    count: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    visible: Type.Optional(Type.Boolean()),
    properties: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    attributes: Type.Optional(Type.Record(Type.String(), Type.String())),
  }, "Recorder: wait until an element (count) exists"),
  waitForExpression: step("waitForExpression", { expression: Type.String({ minLength: 1, maxLength: 10_000 }) }, "Recorder: wait until a page expression is truthy (needs TROUPE_ALLOW_SCRIPT_STEPS)"),
  close: step("close", {}, "Recorder: close the page (ends the scenario)"),
  // --- Troupe steps ---
  extract: step("extract", {
    fields: Type.Record(
      Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_.-]{0,63}$" }),
      Type.Object({
        selector: Selector,
        from: Type.Optional(Type.Union([Type.Literal("text"), Type.Literal("attribute"), Type.Literal("html")], { default: "text" })),
        attribute: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        all: Type.Optional(Type.Boolean({ description: "every match as an array instead of the first" })),
      }, { additionalProperties: false }),
    ),
  }, "Troupe: extract named fields"),
  screenshot: step("screenshot", {
    fullPage: Type.Optional(Type.Boolean()),
    selector: Type.Optional(Selector),
    label: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" })),
  }, "Troupe: screenshot the page or an element into the object store"),
  wait: step("wait", { ms: Type.Integer({ minimum: 0, maximum: 600_000 }) }, "Troupe: wait a fixed time"),
  select: step("select", { selector: Selector, values: Type.Array(Type.String({ maxLength: 1000 }), { minItems: 1, maxItems: 100 }) }, "Troupe: choose <select> options"),
  press: step("press", { key: Type.String({ minLength: 1, maxLength: 64 }), selector: Type.Optional(Selector) }, "Troupe: press a key (optionally on an element)"),
  type: step("type", { selector: Selector, text: Type.String({ maxLength: 100_000 }), delay: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })) }, "Troupe: type text into an element"),
  assert: step("assert", {
    selector: Type.Optional(Selector),
    text: Type.Optional(Type.String({ maxLength: 10_000, description: "text contained in the element (or the page body)" })),
    url: Type.Optional(Type.String({ maxLength: 4096, description: "substring the current URL must contain" })),
    title: Type.Optional(Type.String({ maxLength: 1000, description: "substring the title must contain" })),
  }, "Troupe: assert selector/text/url/title"),
} as const;

export type StepType = keyof typeof StepSchemas;
export const STEP_TYPES = Object.keys(StepSchemas) as StepType[];
export type Step = { [K in StepType]: Static<(typeof StepSchemas)[K]> }[StepType];
export type StepOf<K extends StepType> = Static<(typeof StepSchemas)[K]>;
/** Steps that run page JavaScript; refused unless TROUPE_ALLOW_SCRIPT_STEPS is set. */
export const SCRIPT_STEP_TYPES: readonly StepType[] = ["waitForExpression"];

/** The index of a job spec's first step that runs page JavaScript (SCRIPT_STEP_TYPES), or -1. */
export function scriptStepIndex(spec: { scenario?: { steps: readonly { type: string }[] } | undefined }): number {
  return spec.scenario?.steps.findIndex((st) => (SCRIPT_STEP_TYPES as readonly string[]).includes(st.type)) ?? -1;
}

/**
 * Whether a job spec has a step that runs page JavaScript: only a worker with TROUPE_ALLOW_SCRIPT_STEPS takes it
 * (its registration says `capabilities.scriptSteps`), so the master offers it to no other.
 */
export function needsScriptSteps(spec: { scenario?: { steps: readonly { type: string }[] } | undefined }): boolean {
  // Asked per candidate worker in the master's dispatch, and a spec never changes: each spec is scanned once
  // (a review: 12 µs for 500 steps, per worker, per pick).
  let known = scriptNeeds.get(spec);
  if (known === undefined) scriptNeeds.set(spec, (known = scriptStepIndex(spec) >= 0));
  return known;
}
const scriptNeeds = new WeakMap<object, boolean>();

/**
 * The steps a worker runs for a job: its `url` first as a navigate step when it has one, then the scenario's. Step
 * indices in job events (`StepRef.index`, step timings) count in this list, so whoever names a step by its index
 * (the job page) builds the same list.
 */
export function jobSteps(spec: { url?: string | undefined; scenario?: { steps: readonly Step[] } | undefined }): Step[] {
  const steps: Step[] = [];
  if (spec.url) steps.push({ type: "navigate", url: spec.url });
  steps.push(...(spec.scenario?.steps ?? []));
  return steps;
}

export const MAX_STEPS = 500;
/** The scenario as documented in JSON Schema (validation dispatches by step type for precise errors). */
export const ScenarioSchema = Type.Object({
  title: Type.Optional(Type.String({ maxLength: 500 })),
  timeout: Type.Optional(Timeout),
  selectorAttribute: Type.Optional(Type.String({ maxLength: 200, description: "Recorder: the custom attribute its selectors were recorded with (informational)" })),
  steps: Type.Array(Type.Union(Object.values(StepSchemas)), { minItems: 1, maxItems: MAX_STEPS }),
}, { additionalProperties: false, description: "A Recorder export or a Troupe step list" });
export type Scenario = { title?: string; timeout?: number; selectorAttribute?: string; steps: Step[] };

const compiledSteps = Object.fromEntries(
  Object.entries(StepSchemas).map(([k, s]) => [k, TypeCompiler.Compile(s as TSchema)]),
) as unknown as Record<StepType, TypeCheck<TSchema>>;

/** Validates a scenario step by step; the error names the step index, its type and the field. */
export function validateScenario(value: unknown, path = "scenario"): FieldError | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { path, message: "expected an object with a `steps` array" };
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (k !== "title" && k !== "steps" && k !== "timeout" && k !== "selectorAttribute") return { path: `${path}.${k}`, message: "unknown property" };
  }
  if (v.title !== undefined && (typeof v.title !== "string" || v.title.length > 500)) return { path: `${path}.title`, message: "expected a string of at most 500 characters" };
  if (v.selectorAttribute !== undefined && (typeof v.selectorAttribute !== "string" || v.selectorAttribute.length > 200)) return { path: `${path}.selectorAttribute`, message: "expected a string of at most 200 characters" };
  if (v.timeout !== undefined && (!Number.isInteger(v.timeout) || (v.timeout as number) < 1 || (v.timeout as number) > 600_000)) return { path: `${path}.timeout`, message: "expected an integer from 1 to 600000 (ms)" };
  if (!Array.isArray(v.steps)) return { path: `${path}.steps`, message: "expected an array of steps" };
  if (v.steps.length === 0) return { path: `${path}.steps`, message: "expected at least one step" };
  if (v.steps.length > MAX_STEPS) return { path: `${path}.steps`, message: `expected at most ${MAX_STEPS} steps` };
  for (let i = 0; i < v.steps.length; i++) {
    const s = v.steps[i] as Record<string, unknown> | null;
    const at = `${path}.steps[${i}]`;
    if (typeof s !== "object" || s === null || Array.isArray(s)) return { path: at, message: "expected a step object" };
    const type = s.type;
    // Own keys only: `"toString" in StepSchemas` is true, and its "check" would throw.
    if (typeof type !== "string" || !Object.hasOwn(StepSchemas, type)) {
      return { path: `${at}.type`, message: `unknown step type ${JSON.stringify(type)}; expected one of ${STEP_TYPES.join(", ")}` };
    }
    const err = firstError(compiledSteps[type as StepType], s, at);
    if (err) return { ...err, message: `${type} step: ${err.message}` };
    if (type === "extract" && Object.keys(s.fields as object).length === 0) return { path: `${at}.fields`, message: "extract step: expected at least one field" };
    if (type === "extract") {
      for (const [name, f] of Object.entries(s.fields as Record<string, { from?: string; attribute?: string }>)) {
        if (f.from === "attribute" && !f.attribute) return { path: `${at}.fields.${name}.attribute`, message: "extract step: `attribute` is required when from is \"attribute\"" };
      }
    }
    if (type === "assert" && s.selector === undefined && s.text === undefined && s.url === undefined && s.title === undefined) {
      return { path: at, message: "assert step: expected at least one of selector, text, url, title" };
    }
  }
  return null;
}

/**
 * Steps whose Recorder `target` is a page other than the main one (a pop-up, another tab): no worker runs them, and
 * such a step failed mid-run (code `unsupported`) after the steps before it had acted. Checked where a scenario is
 * submitted (after validateScenario passed), and by the worker before a job's first step (a job from before: refused
 * at assignment, it was requeued for days); not in the event schema, so events already in the log still fold.
 */
export function validateTargets(value: unknown, path = "scenario"): FieldError | null {
  const steps = (value as { steps: Record<string, unknown>[] }).steps;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i] as Record<string, unknown>;
    if (s.target !== undefined && s.target !== "main") {
      return { path: `${path}.steps[${i}].target`, message: `${String(s.type)} step: target ${JSON.stringify(String(s.target).slice(0, 200))} is not supported: steps run in the main page only ("main"; pop-ups and other tabs are not run)` };
    }
  }
  return null;
}

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * Extract field names as the contract documents them (`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`: they
 * become the keys of `result.data`). The step schema's key pattern alone is not enforced (a
 * Record's patternProperties lets other keys through), so this is checked where a scenario is
 * submitted, after validateScenario passed. Events already in the log and assignments of older
 * jobs are not held to it, so a log written before this check folds and runs as it did.
 */
export function validateFieldNames(value: unknown, path = "scenario"): FieldError | null {
  const steps = (value as { steps: Record<string, unknown>[] }).steps;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i] as Record<string, unknown>;
    if (s.type !== "extract") continue;
    for (const name of Object.keys(s.fields as object)) {
      if (!FIELD_NAME.test(name)) {
        return { path: `${path}.steps[${i}].fields`, message: `extract step: field name ${JSON.stringify(name.slice(0, 80))} must start with a letter or _ and have at most 64 of A-Z a-z 0-9 _ . -` };
      }
      // As a key of result.data it would set the object's prototype instead: the value was silently lost.
      if (name === "__proto__") return { path: `${path}.steps[${i}].fields`, message: "extract step: field name \"__proto__\" is reserved; choose another" };
    }
  }
  return null;
}
