//! Errors as `application/problem+json` (RFC 9457), naming the fields at fault.

use crate::service::ServiceError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use campana_core::FieldError;
use campana_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation problems: every field at fault and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into(), errors: vec![] }
    }
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, detail, errors }
    }
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        ApiError::invalid(vec![FieldError::new(field, reason)])
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }
}

/// The status of each kind of service error; the detail and fields are kept as they are.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = e.http_status();
        match e {
            ServiceError::Invalid(errors) => ApiError::invalid(errors),
            other => ApiError::new(status, other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<crate::dialer::DialerError> for ApiError {
    fn from(e: crate::dialer::DialerError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        ApiError::invalid(errors)
    }
}

fn title(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => ("validation", "The request has invalid fields"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        StatusCode::CONFLICT => ("conflict", "Conflicts with the current state"),
        StatusCode::BAD_REQUEST => ("bad-request", "Malformed request"),
        StatusCode::PAYLOAD_TOO_LARGE => ("too-large", "Request too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("media-type", "Unsupported media type"),
        StatusCode::UNAUTHORIZED => ("unauthenticated", "Sign-in required"),
        StatusCode::FORBIDDEN => ("forbidden", "Not allowed"),
        StatusCode::METHOD_NOT_ALLOWED => ("method", "Method not allowed"),
        s if s.is_client_error() => ("client", s.canonical_reason().unwrap_or("Client error")),
        _ => ("server", "Server error"),
    }
}

impl ApiError {
    /// The problem document of this error (also sent as the `error` event of event streams).
    pub fn into_problem(self) -> Problem {
        let (slug, title) = title(self.status);
        Problem {
            kind: format!("https://campana.dev/problems/{slug}"),
            title: title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = self.into_problem();
        let json = serde_json::to_vec(&body).expect("problem documents serialise");
        (status, [(header::CONTENT_TYPE, "application/problem+json")], json).into_response()
    }
}

/// Largest body of a plain-text error rewritten as a problem document.
const MAX_PLAIN_ERROR_BYTES: usize = 64 * 1024;

/// Makes every error under `/api/` a problem document. Handlers answer with [`ApiError`]
/// already; this catches the answers axum writes itself before a handler runs (a path
/// parameter that does not parse, `405 Method Not Allowed` with its `Allow` header, a body
/// over the size limit) and keeps their status and headers.
pub async fn problems_everywhere(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let is_problem = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !api || res.status().as_u16() < 400 || is_problem {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text =
        axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES).await.map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
    let detail = if parts.status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("");
        format!("{path} does not answer {method}; it answers: {allow}")
    } else if text.is_empty() {
        parts.status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let (problem, body) = ApiError::new(parts.status, detail).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, problem.headers[header::CONTENT_TYPE].clone());
    Response::from_parts(parts, body)
}

impl From<crate::upload::SpoolError> for ApiError {
    fn from(e: crate::upload::SpoolError) -> Self {
        ApiError::new(e.http_status(), e.to_string())
    }
}

impl From<crate::explain::ForecastError> for ApiError {
    fn from(e: crate::explain::ForecastError) -> Self {
        ServiceError::from(e).into()
    }
}
