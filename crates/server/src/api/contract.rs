//! The rules that make the OpenAPI document say what the server does, applied once to the
//! document utoipa generates from the handlers (checked by schemathesis in
//! `tests/it/contract.rs`):
//!
//! - every operation documents its errors as `application/problem+json` [`Problem`]s: 400
//!   (malformed: a path id that is not a number, JSON that does not parse), 401, 403, 404, 405
//!   (with `Allow`) and 422 everywhere; 413 and 415 where a body is sent;
//! - an entity as returned (`Campaign`, `User`, …) has its own object schema: the fields of its
//!   input plus id and times. utoipa writes it as `allOf: [Input, {…}]`, which no response can
//!   satisfy because the input refuses unknown fields (`additionalProperties: false`); the two
//!   are merged here, and write-only fields (a user's password) left out;
//! - signing in needs no credentials.

use serde_json::{json, Map, Value};

/// The statuses any operation may answer with a problem document.
const ALWAYS: [(u16, &str); 6] = [
    (400, "Malformed request: a path parameter that does not parse, a body that is not valid JSON"),
    (401, "No valid session or API token"),
    (403, "The role lacks the privilege, or a session request lacks its X-CSRF-Token"),
    (404, "No such object, or one outside the caller's campaigns profile"),
    (405, "The path does not answer this method; the Allow header lists those it answers"),
    (422, "Invalid fields or parameters, each named with the reason"),
];

/// The statuses of an operation that takes a request body.
const WITH_BODY: [(u16, &str); 2] =
    [(413, "The body is larger than the limit"), (415, "The body's Content-Type is not the one the operation takes")];

/// Server-sent event streams and the component schemas of their events' JSON `data` (an
/// `error` event's is a Problem).
const SSE_DATA: [(&str, &[&str]); 2] = [("campaigns_progress_events", &["Progress", "Problem"]), ("agent_events", &[])];

/// Operations that need no credentials.
const PUBLIC: [&str; 1] = ["auth_login"];

const PROBLEM_TYPE: &str = "application/problem+json";

/// Applies the rules above to a generated document (as JSON: utoipa's model does not read
/// back all it writes).
pub fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut v = serde_json::to_value(&doc).expect("the OpenAPI document serialises");
    document_errors(&mut v);
    merge_output_schemas(&mut v);
    v
}

fn problem_response(description: &str) -> Value {
    json!({"description": description, "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// A `text/event-stream` answer is a sequence of events (`event`, `data`, `id`, `retry`) whose
/// `data` is JSON, one of `data_schemas` when given.
fn describe_events(op: &mut Value, data_schemas: &[&str]) {
    let mut data = json!({"type": "string", "contentMediaType": "application/json"});
    if !data_schemas.is_empty() {
        let any: Vec<Value> = data_schemas.iter().map(|name| json!({"$ref": format!("#/components/schemas/{name}")})).collect();
        data["contentSchema"] = json!({"anyOf": any});
    }
    let event = json!({"type": "object", "required": ["data"], "properties": {
        "event": {"type": "string"}, "data": data, "id": {"type": "string"}, "retry": {"type": "integer"}}});
    let stream = op.pointer_mut("/responses/200/content/text~1event-stream").expect("an event stream operation answers text/event-stream");
    stream["schema"] = event;
}

fn document_errors(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let has_body = op.get("requestBody").is_some();
            let id = op.get("operationId").and_then(Value::as_str).unwrap_or("").to_string();
            if let Some((_, data)) = SSE_DATA.iter().find(|(op_id, _)| *op_id == id) {
                describe_events(op, data);
            }
            let public = op.get("operationId").and_then(Value::as_str).is_some_and(|id| PUBLIC.contains(&id));
            if public {
                op["security"] = json!([]);
            }
            let responses = op.as_object_mut().expect("an operation is an object").entry("responses").or_insert_with(|| json!({}));
            let responses = responses.as_object_mut().expect("responses is an object");
            let extra = if has_body { &WITH_BODY[..] } else { &[][..] };
            for (status, description) in ALWAYS.iter().chain(extra) {
                if public && *status == 403 {
                    continue;
                }
                responses.entry(status.to_string()).or_insert_with(|| problem_response(description));
            }
            // Errors written per handler (`(status = 409, body = Problem)`) are problem documents too.
            for (status, response) in responses.iter_mut() {
                if status.parse::<u16>().is_ok_and(|s| s >= 400) {
                    let description = response.get("description").and_then(Value::as_str).unwrap_or("").to_string();
                    let description = if description.is_empty() { "See the problem's detail".to_string() } else { description };
                    *response = problem_response(&description);
                }
            }
        }
    }
}

/// Replaces every `allOf: [{$ref: Input}, {object}]` (a component, or inlined as in `Page_*`),
/// where `Input` refuses unknown fields, with one object holding both sets of fields.
fn merge_output_schemas(doc: &mut Value) {
    let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object).cloned() else { return };
    if let Some(components) = doc.pointer_mut("/components/schemas") {
        merge_within(&schemas, components);
    }
    if let Some(paths) = doc.get_mut("paths") {
        merge_within(&schemas, paths);
    }
}

fn merge_within(schemas: &Map<String, Value>, v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(merged) = merged_all_of(schemas, o) {
                *o = merged;
            }
            for child in o.values_mut() {
                merge_within(schemas, child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|child| merge_within(schemas, child)),
        _ => {}
    }
}

fn merged_all_of(schemas: &Map<String, Value>, schema: &Map<String, Value>) -> Option<Map<String, Value>> {
    let parts = schema.get("allOf")?.as_array()?;
    let closed = parts.iter().any(|p| resolve(schemas, p).is_some_and(|s| s.get("additionalProperties") == Some(&Value::Bool(false))));
    if !closed {
        return None;
    }
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for p in parts {
        let part = resolve(schemas, p).filter(|s| s.get("type").and_then(Value::as_str) == Some("object"));
        let part = part.unwrap_or_else(|| panic!("an allOf over a closed object has a part that is not an object: {p}"));
        for (k, prop) in part.get("properties").and_then(Value::as_object).into_iter().flatten() {
            if !write_only(schemas, prop) {
                properties.insert(k.clone(), prop.clone());
            }
        }
        for r in part.get("required").and_then(Value::as_array).into_iter().flatten() {
            if properties.contains_key(r.as_str().unwrap_or("")) && !required.contains(r) {
                required.push(r.clone());
            }
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(properties));
    out.insert("required".into(), Value::Array(required));
    if let Some(d) = schema.get("description") {
        out.insert("description".into(), d.clone());
    }
    Some(out)
}

fn resolve<'a>(schemas: &'a Map<String, Value>, s: &'a Value) -> Option<&'a Value> {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => schemas.get(r.strip_prefix("#/components/schemas/")?),
        None => Some(s),
    }
}

fn write_only(schemas: &Map<String, Value>, prop: &Value) -> bool {
    resolve(schemas, prop).is_some_and(|p| p.get("writeOnly") == Some(&Value::Bool(true)))
        || prop.get("writeOnly") == Some(&Value::Bool(true))
}
