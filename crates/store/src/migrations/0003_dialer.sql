-- The live dialer's state on records and call attempts (see crates/store/src/dialer.rs).

-- Next attempt scheduled by a retry treatment (ms; NULL = none).
ALTER TABLE records ADD COLUMN retry_at BIGINT;
-- The engine gave the record back without dialing it: not offered again before this moment
-- (ms; NULL = offer now; 253402300799000 = not until something about the record changes).
ALTER TABLE records ADD COLUMN available_at BIGINT;
-- The reason code of the last deferral (engine ReasonCode), for "why not dialable".
ALTER TABLE records ADD COLUMN defer_code TEXT;
-- Personal callback: the agent who owns it.
ALTER TABLE records ADD COLUMN callback_agent BIGINT;
-- Consecutive attempts that ended with last_result (drives the treatments' max_retries).
ALTER TABLE records ADD COLUMN result_streak BIGINT NOT NULL DEFAULT 0;
CREATE INDEX records_dialable ON records (list_id, record_status, available_at);

-- Persisted before the dial is sent; completed when the result arrives. A row with no
-- ended_at after a restart was in flight when the server stopped.
ALTER TABLE call_attempts ADD COLUMN chain_id BIGINT;
ALTER TABLE call_attempts ADD COLUMN connected_at BIGINT;
ALTER TABLE call_attempts ADD COLUMN live_answer BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_attempts ADD COLUMN abandoned BIGINT NOT NULL DEFAULT 0;
CREATE INDEX call_attempts_open ON call_attempts (ended_at);
