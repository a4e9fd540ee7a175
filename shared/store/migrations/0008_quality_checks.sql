-- AI quality checks: test cases (a ticket and what the AI should make of it), test runs that
-- replay them through the real pipeline with every effect recorded instead of applied, and the
-- test tickets of a run with expected and actual results and scores per dimension.

CREATE TABLE ai_test_cases (
    id               BIGSERIAL PRIMARY KEY,
    ticket_id        BIGINT NOT NULL REFERENCES tickets (id),
    ai_agent_id      BIGINT REFERENCES ai_agents (id),
    channel          TEXT,
    summary          TEXT,
    description      TEXT NOT NULL DEFAULT '',
    expected_result  JSONB NOT NULL,
    modified_by      TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    modified_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ai_test_cases_agent ON ai_test_cases (ai_agent_id);

CREATE TABLE ai_test_runs (
    id               BIGSERIAL PRIMARY KEY,
    -- The test_run_id the replayed envelopes carry (the stages' marker key).
    run_key          UUID NOT NULL UNIQUE,
    ai_agent_id      BIGINT,
    description      TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL DEFAULT 'processing'
                     CHECK (state IN ('processing', 'finished', 'cancelled')),
    config           JSONB NOT NULL DEFAULT '{}',
    scores           JSONB,
    created_by       TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    end_date         TIMESTAMPTZ
);

CREATE TABLE ai_test_tickets (
    id               BIGSERIAL PRIMARY KEY,
    test_run_id      BIGINT NOT NULL REFERENCES ai_test_runs (id) ON DELETE CASCADE,
    test_case_id     BIGINT REFERENCES ai_test_cases (id) ON DELETE SET NULL,
    ticket_id        BIGINT NOT NULL REFERENCES tickets (id),
    message_id       BIGINT NOT NULL,
    ai_agent_id      BIGINT,
    state            TEXT NOT NULL DEFAULT 'scheduled'
                     CHECK (state IN ('scheduled', 'tested', 'timedOut')),
    expected_result  JSONB NOT NULL,
    actual_result    JSONB,
    raw_result       JSONB,
    scores           JSONB,
    scheduled_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    tested_at        TIMESTAMPTZ
);
CREATE INDEX ai_test_tickets_open ON ai_test_tickets (scheduled_at) WHERE state = 'scheduled';
CREATE INDEX ai_test_tickets_run ON ai_test_tickets (test_run_id);
