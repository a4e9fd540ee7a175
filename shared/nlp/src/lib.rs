//! The offline language library of the ai worker: everything it reads out of a customer's
//! message without a model server. Pure functions over text, so they are tested without a
//! database and reused by the evaluation command.

pub mod dates;
pub mod identify;
pub mod language;
pub mod params;
pub mod sentiment;
pub mod spam;
pub mod summary;
pub mod text;

pub use language::{Detected, LanguageDetector};
