-- Event hooks, the event log they work from, and user-defined functions (UDFs).

-- A hook runs for each event named in `events`: a signed webhook or a sandboxed script. The
-- webhook's signing secret is kept apart from the executor and never returned.
CREATE TABLE event_hooks (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    events      TEXT[] NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    executor    JSONB NOT NULL,
    secret      TEXT,
    enabled     BOOLEAN NOT NULL DEFAULT true,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (executor->>'type' IN ('webhook', 'script'))
);
CREATE INDEX event_hooks_events ON event_hooks USING gin (events);

-- One row per event seen on `events.>`; `source_key` (the message's Nats-Msg-Id, else its stream
-- sequence) makes a redelivery update the row instead of adding one.
CREATE TABLE event_records (
    id           BIGSERIAL PRIMARY KEY,
    source_key   TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    ticket_id    BIGINT,
    data         JSONB NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'processing', 'closed', 'error')),
    outcome      JSONB,
    hook_outcome JSONB NOT NULL DEFAULT '[]',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    duration_ms  BIGINT
);
CREATE INDEX event_records_type ON event_records (type, id DESC);
CREATE INDEX event_records_ticket ON event_records (ticket_id, id DESC) WHERE ticket_id IS NOT NULL;

CREATE TABLE user_defined_functions (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    slug        TEXT NOT NULL,
    udf_type    TEXT NOT NULL DEFAULT 'udf' CHECK (udf_type IN ('udf', 'tool')),
    description TEXT NOT NULL DEFAULT '',
    parameters  JSONB NOT NULL DEFAULT '[]',
    is_private  BOOLEAN NOT NULL DEFAULT true,
    data        JSONB NOT NULL DEFAULT '{}',
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
