use switchyard_bus::BusError;
use switchyard_store::StoreError;

/// A stage failure, classified by whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Worth retrying: the database or the bus was unavailable, a lock conflict, a guard that
    /// may be lifted.
    #[error("{0}")]
    Transient(String),
    /// The same input will fail the same way: goes to the dead-letter stream at once.
    #[error("{0}")]
    Permanent(String),
}

impl StageError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StageError::Transient(_))
    }

    pub fn permanent(e: impl std::fmt::Display) -> Self {
        StageError::Permanent(e.to_string())
    }
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            StageError::Transient(e.to_string())
        } else {
            StageError::Permanent(e.to_string())
        }
    }
}

impl From<BusError> for StageError {
    fn from(e: BusError) -> Self {
        StageError::Transient(e.to_string())
    }
}
