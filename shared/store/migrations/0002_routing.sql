-- Routing: tags (skills, products, brands, properties), teams and user skills, queue holds, SLA.

CREATE TABLE tags (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT NOT NULL,
    parent              BIGINT REFERENCES tags (id) ON DELETE SET NULL,
    reference           TEXT NOT NULL DEFAULT 'ticket' CHECK (reference IN ('ticket', 'contract', 'customer')),
    type                TEXT NOT NULL DEFAULT 'skill'
                        CHECK (type IN ('skill', 'product', 'brand', 'customerProperty', 'contractProperty', 'other')),
    visibility          TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private', 'disabled')),
    color               TEXT NOT NULL DEFAULT 'grey'
                        CHECK (color IN ('grey', 'green', 'red', 'blue', 'yellow', 'purple', 'orange', 'teal')),
    properties          TEXT[] NOT NULL DEFAULT '{}',
    complexity          TEXT,
    -- In business hours; NULL = no SLA.
    sla                 DOUBLE PRECISION CHECK (sla IS NULL OR sla > 0),
    priority            TEXT NOT NULL DEFAULT 'do-not-change'
                        CHECK (priority IN ('do-not-change', 'low', 'medium', 'high', 'urgent')),
    channels            TEXT[] NOT NULL DEFAULT '{}',
    subchannels         BIGINT[] NOT NULL DEFAULT '{}',
    detection_details   JSONB NOT NULL DEFAULT '{}',
    assignment          TEXT[] NOT NULL DEFAULT '{}',
    -- Whether the tag takes part in skill matching.
    routing_relevant    BOOLEAN NOT NULL DEFAULT true,
    test_case           JSONB NOT NULL DEFAULT '{}',
    modified_by         TEXT,
    modified_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE ticket_tags (
    ticket_id   BIGINT NOT NULL REFERENCES tickets (id),
    tag_id      BIGINT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    -- How it was assigned: subchannel, ticketProperty, contractProperty, customerProperty, ai,
    -- default (defaultSkill fallback) or manual. The router re-derives all but manual ones.
    source      TEXT NOT NULL,
    PRIMARY KEY (ticket_id, tag_id)
);
CREATE INDEX ticket_tags_tag ON ticket_tags (tag_id);

CREATE TABLE teams (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    skills              BIGINT[] NOT NULL DEFAULT '{}',
    required_tag_ids    BIGINT[] NOT NULL DEFAULT '{}',
    excluded_tag_ids    BIGINT[] NOT NULL DEFAULT '{}'
);

ALTER TABLE users
    ADD COLUMN skills           BIGINT[] NOT NULL DEFAULT '{}',
    ADD COLUMN team_ids         BIGINT[] NOT NULL DEFAULT '{}',
    ADD COLUMN status           TEXT NOT NULL DEFAULT 'active'
                                CHECK (status IN ('active', 'busy', 'offwork', 'away', 'absent')),
    ADD COLUMN required_tag_ids BIGINT[] NOT NULL DEFAULT '{}',
    ADD COLUMN excluded_tag_ids BIGINT[] NOT NULL DEFAULT '{}';

ALTER TABLE tickets
    ADD COLUMN priority_rank SMALLINT GENERATED ALWAYS AS (
        CASE priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END) STORED,
    -- The routing-relevant, enabled tags: what an agent's skills must match.
    ADD COLUMN routing_tag_ids          BIGINT[] NOT NULL DEFAULT '{}',
    -- All tags, for backlog restrictions.
    ADD COLUMN tag_ids                  BIGINT[] NOT NULL DEFAULT '{}',
    ADD COLUMN last_customer_message_at TIMESTAMPTZ,
    -- The agent who last worked the ticket (follow-ups go back to them unless absent).
    ADD COLUMN last_agent_id            BIGINT,
    -- The queue hold of getLatest: no second agent gets the ticket until it lapses.
    ADD COLUMN held_by                  BIGINT,
    ADD COLUMN held_until               TIMESTAMPTZ,
    ADD COLUMN overdue_notified_for     TIMESTAMPTZ;

UPDATE tickets SET last_customer_message_at = created_at;

-- The queue: open tickets in each ordering mode.
CREATE INDEX tickets_queue_due ON tickets (due_by NULLS LAST, id) WHERE status = 'open';
CREATE INDEX tickets_queue_priority_due ON tickets (priority_rank DESC, due_by NULLS LAST, id) WHERE status = 'open';
CREATE INDEX tickets_queue_priority_msg ON tickets (priority_rank DESC, last_customer_message_at, id) WHERE status = 'open';
CREATE INDEX tickets_queue_agent ON tickets (agent_id) WHERE status = 'open';
CREATE INDEX tickets_overdue ON tickets (due_by) WHERE status = 'open' AND overdue_notified_for IS DISTINCT FROM due_by;

-- Agents working on a ticket right now (pings with a time to live).
CREATE TABLE ticket_agent (
    ticket_id   BIGINT NOT NULL REFERENCES tickets (id),
    user_id     BIGINT NOT NULL REFERENCES users (id),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ticket_id, user_id)
);
