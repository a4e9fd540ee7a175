-- Subchannels: mailboxes, chat channels, phone lines. Channel-specific data; secrets (passwords,
-- signing secrets, tokens) kept apart so that no read path returns them by accident.
CREATE TABLE subchannels (
    id          BIGSERIAL PRIMARY KEY,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'portal', 'phone', 'letter', 'system', 'chat', 'walkIn')),
    name        TEXT NOT NULL,
    is_default  BOOLEAN NOT NULL DEFAULT false,
    interface   TEXT NOT NULL DEFAULT 'internal' CHECK (interface IN ('internal', 'Freshdesk', 'webhook', 'api')),
    enabled     BOOLEAN NOT NULL DEFAULT true,
    data        JSONB NOT NULL DEFAULT '{}',
    secrets     JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One default subchannel per channel.
CREATE UNIQUE INDEX subchannels_default ON subchannels (channel) WHERE is_default;
