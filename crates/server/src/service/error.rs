//! The one error type of the service layer. The API renders it as a problem document
//! (`crate::api::ApiError`), the console as an error page or the form's field errors.

use campana_core::FieldError;
use campana_store::StoreError;

/// Why a command or query did not happen, by kind; each front-end picks its status from the kind.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input the caller can fix: every field at fault and why (422).
    #[error("{}", join(.0))]
    Invalid(Vec<FieldError>),
    /// Valid fields that together cannot be done, with no single field at fault (422).
    #[error("{0}")]
    Unprocessable(String),
    /// It does not exist, or not for this caller (404).
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Signed in, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Not signed in, or the credentials are wrong or expired (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Cannot be done now; try again later (503).
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the server (500); the detail says where to look, never leaks internals.
    #[error("{0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

fn join(errors: &[FieldError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

impl ServiceError {
    /// One field at fault.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError::new(field, reason)])
    }
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        ServiceError::Invalid(errors)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        ServiceError::NotFound(detail.into())
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        ServiceError::Conflict(detail.into())
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ServiceError::Forbidden(detail.into())
    }
    /// A server fault: logged here with its cause; the caller gets `detail` only.
    pub fn internal(cause: impl std::fmt::Display, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(error = %cause, "{detail}");
        ServiceError::Internal(detail)
    }
    /// The HTTP status both front-ends (API and console) answer this error with.
    pub fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            ServiceError::Invalid(_) | ServiceError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    /// The fields at fault (empty unless [`ServiceError::Invalid`]).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ServiceError::Invalid(e) => e,
            _ => &[],
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ServiceError::NotFound(e.to_string()),
            StoreError::Conflict(_) | StoreError::Transition(_) => ServiceError::Conflict(e.to_string()),
            StoreError::Invalid(errors) => ServiceError::Invalid(errors),
            other => {
                tracing::error!(error = %other, "store failure");
                ServiceError::Internal("the database failed; see the server log".into())
            }
        }
    }
}

impl From<Vec<FieldError>> for ServiceError {
    fn from(errors: Vec<FieldError>) -> Self {
        ServiceError::Invalid(errors)
    }
}

impl From<crate::dialer::DialerError> for ServiceError {
    fn from(e: crate::dialer::DialerError) -> Self {
        use crate::dialer::DialerError;
        match e {
            DialerError::NotRunning => ServiceError::Conflict(e.to_string()),
            DialerError::Busy | DialerError::Unresponsive(_) => ServiceError::Unavailable(e.to_string()),
            DialerError::Refused(m) => ServiceError::Conflict(m),
        }
    }
}

impl From<crate::explain::ForecastError> for ServiceError {
    fn from(e: crate::explain::ForecastError) -> Self {
        use crate::explain::ForecastError;
        match e {
            ForecastError::Invalid(errors) => ServiceError::Invalid(errors),
            ForecastError::Simulation(m) => ServiceError::Unprocessable(m),
            ForecastError::Unavailable(m) => ServiceError::Unavailable(m),
            ForecastError::Store(e) => e.into(),
        }
    }
}
