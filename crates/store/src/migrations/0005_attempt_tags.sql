-- Manager tags an agent applied to a call (the agent desktop, POST /api/v1/agent/tags).
CREATE TABLE call_attempt_tags (
    call_id BIGINT NOT NULL REFERENCES call_attempts (call_id) ON DELETE CASCADE,
    tag_id BIGINT NOT NULL REFERENCES manager_tags (id) ON DELETE CASCADE,
    -- No foreign key: the tag outlives the user who applied it (the audit log names them).
    agent_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (call_id, tag_id)
);
CREATE INDEX call_attempt_tags_tag ON call_attempt_tags (tag_id);
