-- Login with a password and a cookie session, beside the Bearer tokens.
ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE sessions (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    -- SHA-256 of the session token (256-bit random, in the cookie only).
    token_hash      BYTEA NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions (user_id);
