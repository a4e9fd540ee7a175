-- getLatest first looks for open tickets assigned to the calling agent, in the configured order.
-- With only an index on agent_id the planner preferred walking the whole open queue in due order
-- (30-60 ms on 50,000 open tickets); one small index per ordering over assigned open tickets
-- makes that step ~0.1 ms (tests/bench/queue.rs).
DROP INDEX tickets_queue_agent;
CREATE INDEX tickets_queue_agent_due ON tickets (agent_id, due_by NULLS LAST, id)
    WHERE status = 'open' AND agent_id IS NOT NULL;
CREATE INDEX tickets_queue_agent_priority_due ON tickets (agent_id, priority_rank DESC, due_by NULLS LAST, id)
    WHERE status = 'open' AND agent_id IS NOT NULL;
CREATE INDEX tickets_queue_agent_priority_newest
    ON tickets (agent_id, priority_rank DESC, last_customer_message_at DESC NULLS LAST, id)
    WHERE status = 'open' AND agent_id IS NOT NULL;
CREATE INDEX tickets_queue_agent_priority_oldest
    ON tickets (agent_id, priority_rank DESC, last_customer_message_at, id)
    WHERE status = 'open' AND agent_id IS NOT NULL;
