-- Personal data (erasure on request, retention of closed tickets) and the OAuth connection of
-- Microsoft 365 mailboxes.

-- One pending authorization per redirect: the callback is authenticated by its `state` alone, so
-- the state is single-use (deleted when consumed) and short-lived. Only its SHA-256 is stored.
CREATE TABLE oauth_states (
    state_hash      BYTEA PRIMARY KEY,
    provider        TEXT NOT NULL CHECK (provider IN ('microsoft')),
    subchannel_id   BIGINT NOT NULL REFERENCES subchannels (id) ON DELETE CASCADE,
    user_id         BIGINT REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri    TEXT NOT NULL,
    -- PKCE: the token request proves it comes from whoever started the authorization.
    code_verifier   TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL
);

ALTER TABLE customers ADD COLUMN erased_at TIMESTAMPTZ;
ALTER TABLE tickets ADD COLUMN erased_at TIMESTAMPTZ;
CREATE INDEX tickets_closed_at ON tickets (closed_at) WHERE status = 'closed';

-- Deleting a ticket (retention) takes what hangs off it along, except the ERP mirror's own
-- records (meter readings, contract changes), which outlive the ticket that caused them and only
-- lose the reference. Rewritten for every foreign key to tickets, messages, intents and
-- attachments, including those of earlier migrations' tables.
DO $$
DECLARE
    fk RECORD;
    keep_rows BOOLEAN;
BEGIN
    FOR fk IN
        SELECT c.conname, c.conrelid::regclass AS tbl, c.confrelid::regclass AS ref,
               a.attname AS col, fa.attname AS refcol
          FROM pg_constraint c
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
          JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
         WHERE c.contype = 'f'
           AND c.confrelid IN ('tickets'::regclass, 'messages'::regclass,
                               'intents'::regclass, 'attachments'::regclass)
           AND cardinality(c.conkey) = 1
    LOOP
        keep_rows := fk.tbl::text IN ('meter_readings', 'contract_changes')
                     OR (fk.tbl::text = 'messages' AND fk.ref::text = 'intents');
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%I) REFERENCES %s (%I) ON DELETE %s',
                       fk.tbl, fk.conname, fk.col, fk.ref, fk.refcol,
                       CASE WHEN keep_rows THEN 'SET NULL' ELSE 'CASCADE' END);
    END LOOP;
END
$$;
