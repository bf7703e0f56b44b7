//! Request extractors that report bad input as problems naming the field.

use super::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use campana_core::FieldError;
use serde::de::DeserializeOwned;

/// JSON body: the error names the JSON path of the bad value (`overrides.abandon_rate_max`).
pub struct ApiJson<T>(pub T);

/// Largest JSON body accepted (bulk upserts of 10,000 members fit).
pub const MAX_JSON_BYTES: usize = 16 << 20;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("expected Content-Type application/json, got '{ct}'")));
        }
        let bytes =
            axum::body::Bytes::from_request(req, state).await.map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub use crate::service::bad_text;

/// The JSON path of the first string (value or key) that [`bad_text`] refuses.
fn find_bad_text(v: &serde_json::Value, path: &str) -> Option<FieldError> {
    let here = |p: &str| if p.is_empty() { "(body)".to_string() } else { p.to_string() };
    match v {
        serde_json::Value::String(s) => bad_text(s).map(|why| FieldError::new(here(path), why)),
        serde_json::Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| find_bad_text(x, &format!("{path}[{i}]"))),
        serde_json::Value::Object(o) => o.iter().find_map(|(k, x)| {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            bad_text(k).map(|why| FieldError::new(here(&p), why)).or_else(|| find_bad_text(x, &p))
        }),
        _ => None,
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Escaped control characters (`\u0000`) are valid JSON: found in the parsed value first.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Some(e) = find_bad_text(&v, "") {
            return Err(ApiError::invalid(vec![e]));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = strip_position(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {reason}"))
        } else {
            let field = if path == "." { unknown_field(&reason).unwrap_or_else(|| "(body)".into()) } else { path };
            ApiError::invalid(vec![FieldError::new(field, reason)])
        }
    })
}

fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

fn unknown_field(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// A `multipart/form-data` body (uploads). Another content type is refused with 415.
pub struct ApiMultipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.starts_with("multipart/form-data") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("expected Content-Type multipart/form-data; boundary=…, got '{ct}'"),
            ));
        }
        axum::extract::Multipart::from_request(req, state).await.map(ApiMultipart).map_err(|e| ApiError::new(e.status(), e.body_text()))
    }
}

/// Query string: the error names the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded_de(q);
        de.map(ApiQuery)
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}").parse().map_err(|_| ApiError::field("(query)", "is not a valid query string"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| {
        let text = e.body_text();
        let reason = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text).to_string();
        let field = reason.split(':').next().filter(|f| !f.contains(' ')).unwrap_or("(query)").to_string();
        ApiError::invalid(vec![FieldError::new(field, reason)])
    })
}

/// Refuses (422) a request whose path or query string, once percent-decoded, holds a control
/// character ([`bad_text`], tabs and line breaks included: they make no sense in a URL).
pub async fn refuse_control_chars(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let decoded = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                (b'%', Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    for (what, raw) in [("(path)", req.uri().path()), ("(query)", req.uri().query().unwrap_or(""))] {
        let text = decoded(raw);
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            let why = format!("contains the control character U+{:04X}, which is not allowed", c as u32);
            return ApiError::invalid(vec![FieldError::new(what, why)]).into_response();
        }
    }
    next.run(req).await
}

/// A JSON part of a multipart upload (`options`), its field errors named under the part.
pub async fn multipart_json<T: DeserializeOwned>(field: axum::extract::multipart::Field<'_>, part: &str) -> Result<T, ApiError> {
    let text = field.bytes().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    parse_json(&text).map_err(|mut e| {
        for fe in &mut e.errors {
            fe.field = format!("{part}.{}", fe.field);
        }
        e
    })
}
