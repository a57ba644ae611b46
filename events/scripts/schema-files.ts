import { CommandSchemas, ReplySchemas } from "../src/commands.ts";
import { EVENT_PRODUCER, EVENT_TYPES, EVENT_VERSION, EnvelopeSchema, EventDataSchemas } from "../src/events.ts";
import { ScenarioSchema } from "../src/scenario.ts";
import { subjects } from "../src/subjects.ts";

/** The JSON Schema files (name → content) generated from the TypeScript contract. */
export function schemaFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const put = (name: string, schema: object) => files.set(name, `${JSON.stringify(schema, null, 2)}\n`);
  const plain = (s: unknown) => JSON.parse(JSON.stringify(s)) as Record<string, unknown>;

  put("envelope.schema.json", {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "troupe/envelope.schema.json",
    title: "Troupe event envelope",
    ...plain(EnvelopeSchema),
  });
  for (const type of EVENT_TYPES) {
    const [entity, kind] = type.split(".") as [string, string];
    const subject = type === "worker.heartbeat" ? subjects.allHeartbeats.replace(">", "<workerId>") : `troupe.evt.${entity}.<${entity}Id>.${kind}`;
    const data = plain(EventDataSchemas[type]);
    put(`event.${type}.schema.json`, {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      $id: `troupe/event.${type}.schema.json`,
      title: `Troupe event ${type}`,
      description: `${String(data.description ?? "")}. Subject: ${subject}. Producer: ${EVENT_PRODUCER[type]}.`,
      type: "object",
      additionalProperties: false,
      required: ["id", "type", "v", "time", "source", "data"],
      properties: {
        ...(plain(EnvelopeSchema).properties as object),
        type: { const: type },
        v: { const: EVENT_VERSION },
        data,
      },
    });
  }
  for (const [name, schema] of Object.entries(CommandSchemas)) {
    put(`command.${name}.schema.json`, {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      $id: `troupe/command.${name}.schema.json`,
      title: `Troupe command ${name}`,
      ...plain(schema),
    });
  }
  for (const [name, schema] of Object.entries(ReplySchemas)) {
    put(`reply.${name}.schema.json`, {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      $id: `troupe/reply.${name}.schema.json`,
      title: `Troupe reply ${name}`,
      ...plain(schema),
    });
  }
  put("scenario.schema.json", {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "troupe/scenario.schema.json",
    title: "Troupe scenario (Chrome DevTools Recorder export or Troupe steps)",
    ...plain(ScenarioSchema),
  });
  return files;
}
