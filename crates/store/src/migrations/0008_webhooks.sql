-- Webhook subscriptions (Standard Webhooks): where to POST which events, signed with `secret`
-- (and with `previous_secret` too until `previous_secret_until`, during a rotation).
CREATE TABLE webhook_endpoints (
    id {id},
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    -- JSON array of event types; empty: every event
    event_types TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until BIGINT,
    enabled BIGINT NOT NULL,
    -- Why it was disabled by Campana (a 410 Gone answer), NULL when enabled or disabled by a person
    disabled_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The transactional outbox: one row per event, written in the transaction of the change it
-- announces; `msg_id` is the `webhook-id` every delivery of it carries (it never changes).
CREATE TABLE webhook_events (
    id {id},
    msg_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    -- The JSON body, exactly as signed and sent
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One event to one endpoint: its attempts and outcome (the delivery log).
CREATE TABLE webhook_deliveries (
    id {id},
    event_id BIGINT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- pending, delivered, failed (gave up or the endpoint answered 410)
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    -- When the next attempt is due (a claimed attempt moves it ahead by the claim's lease)
    next_attempt_at BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
