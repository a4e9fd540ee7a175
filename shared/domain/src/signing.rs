//! Signatures of outgoing calls (ERP calls of agents, event-hook webhooks): HMAC-SHA256 over
//! `<timestamp>.<body>`, sent as `X-Switchyard-Signature: sha256=<hex>` with the timestamp in
//! `X-Switchyard-Timestamp` (unix seconds). The receiver recomputes it with the shared secret
//! and rejects old timestamps.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-switchyard-signature";
pub const TIMESTAMP_HEADER: &str = "x-switchyard-timestamp";

/// The signature header value: `sha256=<hex>` over `<timestamp>.<body>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = sign("s", 1, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, sign("s", 2, b"{}"));
        assert_ne!(a, sign("s", 1, b"{ }"));
        assert_ne!(a, sign("t", 1, b"{}"));
    }
}
