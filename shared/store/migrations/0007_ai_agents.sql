-- AI agents as data (issue 4), and what the intent life cycle needs.

CREATE TABLE ai_agents (
    id                  BIGSERIAL PRIMARY KEY,
    slug                TEXT NOT NULL,
    name                TEXT NOT NULL,
    -- The whole agent as the API shows it (settings, channels, …), minus id and timestamps.
    definition          JSONB NOT NULL,
    active              BOOLEAN NOT NULL DEFAULT true,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_by         TEXT NOT NULL,
    -- Soft delete: intents on old tickets keep pointing at the agent.
    deleted_at          TIMESTAMPTZ
);
CREATE UNIQUE INDEX ai_agents_slug ON ai_agents (slug) WHERE deleted_at IS NULL;

ALTER TABLE intents
    ADD COLUMN contract_id  BIGINT,
    ADD COLUMN name         TEXT,
    ADD COLUMN infos        JSONB NOT NULL DEFAULT '[]',
    ADD COLUMN outcome      JSONB,
    ADD COLUMN modified_at  TIMESTAMPTZ NOT NULL DEFAULT now();
-- One active intent per ticket, agent and contract; executed and deleted ones stay as history.
CREATE UNIQUE INDEX intents_active ON intents (ticket_id, code, coalesce(contract_id, 0))
    WHERE status IN ('preview', 'ready', 'invalidated');
