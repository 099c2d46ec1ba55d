//! Errors of the domain operations. Each says what went wrong; the gateway maps them to REST
//! and gRPC statuses in one place.

use crate::constraints::ConstraintViolation;
use crate::storage::StorageError;
use crate::ObjectName;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfirmError {
    #[error("no draft and no confirmed object named {name}")]
    NotFound { name: ObjectName },
    #[error("main already holds a different object named {name}")]
    Conflict { name: ObjectName },
    #[error("draft {name} does not match its declared constraints: {violation}")]
    ConstraintMismatch {
        name: ObjectName,
        violation: ConstraintViolation,
    },
    #[error("confirm of {name} did not converge under concurrent changes; retry")]
    NotConverged { name: ObjectName },
    #[error(transparent)]
    Storage(#[from] StorageError),
}
