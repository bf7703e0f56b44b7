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

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
