-- Mail ingestion (issue 3): what threading and de-duplication need per message, and the IMAP
-- progress of each mailbox.

-- The mail's own identity and thread, kept per message so replies find their ticket.
ALTER TABLE messages
    ADD COLUMN subchannel_id    BIGINT,
    ADD COLUMN mail_message_id  TEXT,
    ADD COLUMN in_reply_to      TEXT,
    ADD COLUMN mail_references  TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN body_clean       TEXT,
    -- The raw MIME in the object store: always kept, whatever the parser made of it.
    ADD COLUMN raw_object_key   TEXT,
    -- Set for automatic mail (autoReply, outOfOffice, bounce): never answered automatically.
    ADD COLUMN auto_reply       TEXT;

-- The same Message-ID on the same subchannel is one message, however often it is fetched or
-- published (the JetStream window is two minutes; this is the lasting guard). The same mail to
-- two subchannels is two messages, on two tickets.
CREATE UNIQUE INDEX messages_mail_identity ON messages (subchannel_id, mail_message_id)
    WHERE direction = 'in' AND mail_message_id IS NOT NULL AND subchannel_id IS NOT NULL;
CREATE INDEX messages_mail_message_id ON messages (mail_message_id) WHERE mail_message_id IS NOT NULL;

-- How far a connector got in a mailbox folder. A UID is only meaningful with its UIDVALIDITY;
-- last_uid advances only after the mail was stored and published, so a restart neither skips
-- nor refetches.
CREATE TABLE imap_progress (
    subchannel_id   BIGINT NOT NULL REFERENCES subchannels (id) ON DELETE CASCADE,
    folder          TEXT NOT NULL,
    uid_validity    BIGINT NOT NULL,
    last_uid        BIGINT NOT NULL,
    modified_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subchannel_id, folder)
);
