-- Dark processing (issue 6): replies queued for the outbound worker, and the ERP mirror's
-- writes by AI agents.

-- An outbound reply is a message with direction 'out' and a send status. Its Message-ID is
-- fixed when it is queued, so a resend after a crash carries the same one.
ALTER TABLE messages
    ADD COLUMN send_status    TEXT CHECK (send_status IN ('queued', 'sent', 'failed')),
    ADD COLUMN sent_at        TIMESTAMPTZ,
    ADD COLUMN send_attempts  INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN send_error     TEXT,
    ADD COLUMN cc_addrs       TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN channel        TEXT,
    -- The executed intent this reply answers: one reply per execution.
    ADD COLUMN intent_id      BIGINT REFERENCES intents (id),
    ADD COLUMN created_by     TEXT;
CREATE UNIQUE INDEX messages_reply_per_intent ON messages (intent_id) WHERE intent_id IS NOT NULL;
CREATE INDEX messages_queued ON messages (created_at) WHERE send_status = 'queued';

ALTER TABLE intents
    ADD COLUMN options      JSONB NOT NULL DEFAULT '[]',
    ADD COLUMN executed_at  TIMESTAMPTZ,
    ADD COLUMN executed_by  TEXT;

-- Meter readings stored by the meter_reading agent (or a person), per contract.
CREATE TABLE meter_readings (
    id            BIGSERIAL PRIMARY KEY,
    contract_id   BIGINT NOT NULL REFERENCES contracts (id),
    meter_number  TEXT NOT NULL,
    value         NUMERIC NOT NULL,
    reading_date  DATE NOT NULL,
    ticket_id     BIGINT REFERENCES tickets (id),
    intent_id     BIGINT UNIQUE REFERENCES intents (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by    TEXT NOT NULL
);
CREATE INDEX meter_readings_contract ON meter_readings (contract_id, reading_date);

-- Every change an agent made to a contract (IBAN, deposit, move, cancellation): before and
-- after, and which intent did it, so a change can be traced and undone by a person.
CREATE TABLE contract_changes (
    id           BIGSERIAL PRIMARY KEY,
    contract_id  BIGINT NOT NULL REFERENCES contracts (id),
    kind         TEXT NOT NULL,
    before       JSONB NOT NULL,
    after        JSONB NOT NULL,
    ticket_id    BIGINT REFERENCES tickets (id),
    intent_id    BIGINT REFERENCES intents (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by   TEXT NOT NULL,
    UNIQUE (intent_id, kind)
);
CREATE INDEX contract_changes_contract ON contract_changes (contract_id);

-- The outbound stage leaves markers like every other stage.
ALTER TABLE stage_runs DROP CONSTRAINT IF EXISTS stage_runs_stage_check;
ALTER TABLE stage_runs ADD CONSTRAINT stage_runs_stage_check
    CHECK (stage IN ('ingest', 'ai', 'router', 'autoexecute', 'outbound'));
