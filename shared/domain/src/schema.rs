//! Small OpenAPI schema builders for fields whose rule the derive cannot state (a closed list of
//! strings kept as `String` in Rust), so the document says exactly what the server accepts.

use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::Object;

/// A string that must be one of `values`; `null` (the field left out) is allowed too.
pub fn optional_string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            values
                .iter()
                .map(|v| serde_json::Value::from(*v))
                .chain([serde_json::Value::Null]),
        ))
        .build()
}

/// A required string that must be one of `values`.
pub fn string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// A list whose items must each be one of `values`.
pub fn string_enum_array(values: &[&str]) -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(string_enum(values))
        .build()
}
