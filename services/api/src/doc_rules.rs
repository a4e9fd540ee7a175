//! Rules of the OpenAPI document that the route annotations cannot state by themselves.

use serde_json::json;
use utoipa::openapi::OpenApi;

/// The path of the reference product's "Update setting" operation.
pub(crate) const SETTING_TEMPLATE: &str = "/api/mind/settings/{name}";

/// Adds one concrete `PUT /api/mind/settings/<name>` per known setting, with that setting's value
/// schema. A value's type depends on the name, which one templated path cannot express; the
/// concrete paths let generated clients and fuzzers send values the server accepts. The template
/// stays for clients written against the reference product (concrete paths match first).
fn setting_paths(doc: &mut serde_json::Value) {
    let Some(put) = doc
        .pointer(&format!(
            "/paths/{}/put",
            SETTING_TEMPLATE.replace('/', "~1")
        ))
        .cloned()
    else {
        return;
    };
    for def in switchyard_store::settings::DEFINITIONS {
        let mut op = put.clone();
        op["operationId"] = json!(format!("put_setting_{}", def.name));
        op["summary"] = json!(format!("Update setting {}", def.name));
        op["description"] = json!(def.description);
        if let Some(params) = op["parameters"].as_array_mut() {
            params.retain(|p| p["name"] != "name");
        }
        op["requestBody"] = json!({
            "description": "The new value as raw JSON",
            "content": {"application/json": {"schema": (def.schema)()}},
            "required": true
        });
        doc["paths"][format!("/api/mind/settings/{}", def.name)] = json!({"put": op});
    }
}

/// The served document: the generated one with the rules below, which need JSON Schema keywords
/// (`anyOf`, `patternProperties`) that the generator's types do not carry.
pub(crate) fn finish(doc: &OpenApi) -> serde_json::Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    setting_paths(&mut doc);
    ticket_rules(&mut doc);
    settings_body(&mut doc);
    if let Some(filter) = doc.pointer_mut("/components/schemas/Filter") {
        *filter = switchyard_store::search::filter_schema();
    }
    hook_rules(&mut doc);
    outcome_rules(&mut doc);
    doc
}

/// An event hook names its events (or is named after one), and its executor is a webhook with
/// an http(s) URL or a Rhai script with code.
fn hook_rules(doc: &mut serde_json::Value) {
    let Some(schema) = doc.pointer_mut("/components/schemas/HookInput") else {
        return;
    };
    let events = switchyard_store::hooks::EVENT_TYPES;
    schema["properties"]["events"]["items"] = json!({"type": "string", "enum": events});
    schema["anyOf"] = json!([
        {"required": ["events"], "properties": {"events": {"minItems": 1}}},
        {"properties": {"name": {"enum": events}}}
    ]);
    let script_code = json!({"type": "string", "pattern": "\\S",
        "description": "Rhai; it must compile (a 400 names the error)"});
    if let Some(x) = doc.pointer_mut("/components/schemas/HookExecutorInput") {
        x["anyOf"] = json!([
            {"required": ["type", "url"], "properties": {
                "type": {"const": "webhook"},
                "url": {"type": "string", "pattern": "^https?://"}}},
            {"required": ["type", "code"], "properties": {
                "type": {"const": "script"},
                "code": script_code,
                "language": {"enum": ["rhai", null]}}}
        ]);
    }
}

/// `POST /api/mind/aiAgent/outcome` needs a stored agent's id or an unsaved definition.
fn outcome_rules(doc: &mut serde_json::Value) {
    if let Some(schema) = doc.pointer_mut("/components/schemas/OutcomeRequest") {
        schema["anyOf"] = json!([
            {"required": ["aiAgentId"], "properties": {"aiAgentId": {"type": "integer"}}},
            {"required": ["aiAgent"], "properties": {"aiAgent": {"type": "object"}}}
        ]);
    }
}

/// Tickets: a contract id as a number or digits; on `POST /api/mind/ticket` a subject or a body
/// with text, a sender unless the channel is `system` (an address on `email`), no empty recipient.
fn ticket_rules(doc: &mut serde_json::Value) {
    // A contract id is accepted as a number or as a string of digits; a change must name a
    // positive id that fits 64 bits.
    let contract_ids = [
        (
            "CreateTicket",
            json!({"anyOf": [
                {"type": "integer", "minimum": 0, "maximum": u64::MAX},
                {"type": "string", "pattern": "^[0-9]+$"},
                {"type": "null"}
            ]}),
        ),
        (
            "UpdateTicket",
            json!({"anyOf": [
                {"type": "integer", "minimum": 1, "maximum": i64::MAX},
                {"type": "string", "pattern": "^0*[1-9][0-9]{0,17}$"},
                {"type": "null"}
            ]}),
        ),
    ];
    for (name, schema) in contract_ids {
        if let Some(p) = doc.pointer_mut(&format!("/components/schemas/{name}/properties")) {
            p["contractId"] = schema;
        }
    }
    let Some(schema) = doc.pointer_mut("/components/schemas/CreateTicket") else {
        return;
    };
    let text = json!({"type": "string", "pattern": "\\S"});
    schema["properties"]["to"]["items"] = text.clone();
    // The sender on channel email (the default) must contain an address.
    let not_email: Vec<&str> = switchyard_domain::Channel::NAMES
        .iter()
        .copied()
        .filter(|c| *c != "email")
        .collect();
    let email = json!({"type": "string", "pattern": crate::tickets::EMAIL_PATTERN});
    schema["allOf"] = json!([
        {"anyOf": [
            {"required": ["subject"], "properties": {"subject": text}},
            {"required": ["body"], "properties": {"body": text}}
        ]},
        {"anyOf": [
            {"required": ["channel"], "properties": {"channel": {"const": "system"}}},
            {"required": ["from"], "properties": {"from": text}}
        ]},
        {"anyOf": [
            {"required": ["channel"], "properties": {"channel": {"enum": not_email}}},
            {"properties": {"from": email}}
        ]}
    ]);
}

/// `POST /api/mind/settings`: each known setting with its value schema, and the nested
/// `_tag[<id>].<property>` keys with the schema of that tag property.
fn settings_body(doc: &mut serde_json::Value) {
    let properties: serde_json::Map<String, serde_json::Value> =
        switchyard_store::settings::DEFINITIONS
            .iter()
            .map(|d| (d.name.to_owned(), (d.schema)()))
            .collect();
    let tag_props = doc
        .pointer("/components/schemas/TagInput/properties")
        .and_then(|p| p.as_object())
        .cloned()
        .unwrap_or_default();
    let nested: serde_json::Map<String, serde_json::Value> = tag_props
        .into_iter()
        .filter(|(k, _)| k != "id")
        .map(|(k, v)| (format!("^_tag\\[[1-9][0-9]{{0,17}}\\]\\.{k}$"), v))
        .collect();
    let Some(body) = doc.pointer_mut(
        "/paths/~1api~1mind~1settings/post/requestBody/content/application~1json/schema",
    ) else {
        return;
    };
    *body = json!({
        "type": "object",
        "description": "Setting names to new values; `_tag[<id>].<property>` changes one property of a tag.",
        "properties": properties,
        "patternProperties": nested,
        "additionalProperties": false
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_setting_has_a_documented_put_with_its_value_schema() {
        let (_, doc) = crate::routes();
        let doc = super::finish(&doc);
        for def in switchyard_store::settings::DEFINITIONS {
            let path = format!("/api/mind/settings/{}", def.name);
            let body =
                &doc["paths"][&path]["put"]["requestBody"]["content"]["application/json"]["schema"];
            assert_eq!(body, &(def.schema)(), "{path}");
        }
        assert!(!doc["paths"][super::SETTING_TEMPLATE]["put"].is_null());
        let post = &doc["paths"]["/api/mind/settings"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        assert_eq!(post["additionalProperties"], false);
        assert!(post["patternProperties"]
            .as_object()
            .is_some_and(|p| p.keys().any(|k| k.ends_with("\\.sla$"))));
    }
}
