-- Switchyard foundation schema. Enum columns hold the seeds' wire names, checked here so that a
-- bad value can never be stored whichever code path writes it.

CREATE TABLE customers (
    id            BIGINT PRIMARY KEY,
    email         TEXT,
    firstname     TEXT,
    lastname      TEXT,
    company       TEXT,
    business      BOOLEAN NOT NULL DEFAULT false,
    address       TEXT,
    phone         TEXT,
    data          JSONB NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX customers_email ON customers (lower(email));

CREATE TABLE contracts (
    id                BIGINT PRIMARY KEY,
    customer_id       BIGINT NOT NULL REFERENCES customers (id),
    status            TEXT NOT NULL DEFAULT 'active',
    energy            TEXT NOT NULL DEFAULT 'electricity' CHECK (energy IN ('electricity', 'gas')),
    email             TEXT,
    delivery_address  TEXT,
    billing_address   TEXT,
    iban              TEXT,
    monthly_deposit   NUMERIC,
    counter_number    TEXT,
    start_date        TIMESTAMPTZ,
    end_date          TIMESTAMPTZ,
    data              JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX contracts_customer ON contracts (customer_id);
CREATE INDEX contracts_counter ON contracts (counter_number);

CREATE TABLE tickets (
    id                      BIGSERIAL PRIMARY KEY,
    direction               TEXT NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out', 'internal')),
    from_addr               TEXT,
    from_name               TEXT,
    to_addrs                TEXT[] NOT NULL DEFAULT '{}',
    cc_emails               TEXT[] NOT NULL DEFAULT '{}',
    reply_cc_emails         TEXT[] NOT NULL DEFAULT '{}',
    subchannel_id           BIGINT,
    external_ticket_id      TEXT UNIQUE,
    sentiment               TEXT CHECK (sentiment IN ('positive', 'neutral', 'negative')),
    language                TEXT,
    language_code           TEXT,
    auto_execute_at         TIMESTAMPTZ,
    ai_support_level        TEXT NOT NULL DEFAULT 'unprocessed'
                            CHECK (ai_support_level IN ('unprocessed', 'human', 'bot', 'automated')),
    spam_status             TEXT,
    is_customer_active      BOOLEAN NOT NULL DEFAULT false,
    interface               TEXT NOT NULL DEFAULT 'api' CHECK (interface IN ('internal', 'Freshdesk', 'api')),
    priority                TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    channel                 TEXT NOT NULL
                            CHECK (channel IN ('email', 'portal', 'phone', 'letter', 'system', 'chat', 'walkIn')),
    channel_id              TEXT,
    status                  TEXT NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'pending', 'resolved', 'closed', 'waitingOnCustomer', 'waitingOnThirdParty')),
    summary                 TEXT,
    subject                 TEXT,
    body_plain              TEXT,
    body                    TEXT,
    body_clean              TEXT,
    is_escalated            BOOLEAN NOT NULL DEFAULT false,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_at             TIMESTAMPTZ,
    first_response_due_by   TIMESTAMPTZ,
    due_by                  TIMESTAMPTZ,
    closed_at               TIMESTAMPTZ,
    customer_id             BIGINT REFERENCES customers (id),
    contract_id             BIGINT REFERENCES contracts (id),
    partner_id              BIGINT,
    customer_legitimation   INTEGER NOT NULL DEFAULT 0,
    responder_id            BIGINT,
    agent_id                BIGINT,
    additional_data         JSONB NOT NULL DEFAULT '{}',
    template                TEXT,
    -- Why the ticket needs a person regardless of its content: [{code, message, stage, at}].
    processing_flags        JSONB NOT NULL DEFAULT '[]'
);
CREATE INDEX tickets_open ON tickets (status, due_by) WHERE status NOT IN ('closed', 'resolved');
CREATE INDEX tickets_customer ON tickets (customer_id);

-- The conversation: every inbound and outbound message of a ticket.
CREATE TABLE messages (
    id              BIGSERIAL PRIMARY KEY,
    ticket_id       BIGINT NOT NULL REFERENCES tickets (id),
    direction       TEXT NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out', 'internal')),
    -- What the inbound item is known by (api:<request id>, <subchannel>:<Message-ID>): one
    -- message per key, the lasting de-duplication guard behind JetStream's two-minute window.
    inbound_key     TEXT UNIQUE,
    from_addr       TEXT,
    from_name       TEXT,
    to_addrs        TEXT[] NOT NULL DEFAULT '{}',
    subject         TEXT,
    body            TEXT,
    body_plain      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX messages_ticket ON messages (ticket_id);

CREATE TABLE attachments (
    id                  BIGSERIAL PRIMARY KEY,
    ticket_id           BIGINT NOT NULL REFERENCES tickets (id),
    message_id          BIGINT REFERENCES messages (id),
    name                TEXT NOT NULL,
    size                BIGINT NOT NULL,
    width               INTEGER,
    height              INTEGER,
    inline              BOOLEAN NOT NULL DEFAULT false,
    file_ending         TEXT,
    content_type        TEXT,
    object_key          TEXT NOT NULL,
    original_url        TEXT,
    extraction_status   TEXT NOT NULL DEFAULT 'notStarted'
                        CHECK (extraction_status IN ('notStarted', 'inProgress', 'success', 'error')),
    extracted_data      JSONB,
    extraction_data     JSONB,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX attachments_ticket ON attachments (ticket_id);

-- Detected AI agents on a ticket (filled by the AI processing issue).
CREATE TABLE intents (
    id              BIGSERIAL PRIMARY KEY,
    ticket_id       BIGINT NOT NULL REFERENCES tickets (id),
    message_id      BIGINT REFERENCES messages (id),
    ai_agent_id     BIGINT,
    code            TEXT NOT NULL,
    confidence      REAL NOT NULL DEFAULT 0,
    data            JSONB NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'preview'
                    CHECK (status IN ('preview', 'ready', 'executed', 'invalidated', 'deleted')),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX intents_ticket ON intents (ticket_id);

-- One row per (stage, input, test run): the marker that makes a stage's effect happen once. It is
-- written in the stage's own transaction and doubles as the ticket's activity timeline.
CREATE TABLE stage_runs (
    id              BIGSERIAL PRIMARY KEY,
    stage           TEXT NOT NULL CHECK (stage IN ('ingest', 'ai', 'router', 'autoexecute')),
    input_key       TEXT NOT NULL,
    test_run_key    TEXT NOT NULL DEFAULT '',
    ticket_id       BIGINT,
    message_id      BIGINT,
    replica         TEXT NOT NULL,
    trace_id        TEXT,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    outcome         JSONB NOT NULL DEFAULT '{}',
    -- What the stage handed on (re-published as is when a redelivery finds the marker).
    next_envelope   JSONB,
    -- Events the stage emitted, re-published with the same ids after a crash.
    events          JSONB NOT NULL DEFAULT '[]',
    -- A test run's effects, recorded instead of applied.
    recorded_effects JSONB,
    UNIQUE (stage, input_key, test_run_key)
);
CREATE INDEX stage_runs_ticket ON stage_runs (ticket_id, finished_at);

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    first_name      TEXT NOT NULL DEFAULT '',
    last_name       TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    lang            TEXT NOT NULL DEFAULT 'de',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen       TIMESTAMPTZ
);

-- Bearer tokens, stored as SHA-256 of the token (tokens are 256-bit random, so a fast hash is
-- enough; the plain token is shown once).
CREATE TABLE api_tokens (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    name            TEXT NOT NULL,
    token_hash      BYTEA NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);

CREATE TABLE settings (
    name            TEXT PRIMARY KEY,
    value           JSONB NOT NULL,
    modified_by     TEXT NOT NULL,
    modified_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE dead_letters (
    id              BIGSERIAL PRIMARY KEY,
    stage           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    msg_id          TEXT,
    payload         BYTEA NOT NULL,
    error           TEXT NOT NULL,
    deliveries      BIGINT NOT NULL,
    stream_sequence BIGINT,
    ticket_id       BIGINT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    replay_count    INTEGER NOT NULL DEFAULT 0,
    replayed_at     TIMESTAMPTZ,
    replayed_by     TEXT,
    UNIQUE (stage, stream_sequence)
);
CREATE INDEX dead_letters_open ON dead_letters (created_at) WHERE replayed_at IS NULL;

-- Who (a user or a service replica) changed what, when.
CREATE TABLE audit_log (
    id              BIGSERIAL PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor           TEXT NOT NULL,
    entity          TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    action          TEXT NOT NULL,
    changes         JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, at);
