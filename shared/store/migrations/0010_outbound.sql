-- Outbound (issue 6): when the last send attempt started, so the sweep of queued replies
-- republishes a reply whose hand-over was lost, not one that is being retried right now.
ALTER TABLE messages ADD COLUMN send_attempted_at TIMESTAMPTZ;
