use serde::Serialize;

/// A value that failed to parse or validate, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field (JSON pointer-ish name, e.g. `settings.abandon_rate_max`) or type that was wrong.
    pub field: String,
    /// Why it was refused, in a sentence a person can act on.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError { field: field.into(), reason: reason.into() }
    }

    /// The same error, reported under another field name (`within("settings")` turns
    /// `abandon_rate_max` into `settings.abandon_rate_max`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }

    pub fn renamed(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

/// Collects every problem with an input instead of stopping at the first.
#[derive(Debug, Default, Clone)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e)
    }
    pub fn check(&mut self, ok: bool, field: &str, reason: impl FnOnce() -> String) {
        if !ok {
            self.0.push(FieldError::new(field, reason()))
        }
    }
    pub fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// An input with a display name that checks itself before it is stored.
pub trait Validated {
    fn name(&self) -> &str;
    fn validate(&self) -> Result<(), Vec<FieldError>>;
}
