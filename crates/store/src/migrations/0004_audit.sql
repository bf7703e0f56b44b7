-- The audit log: who changed what and when, with the object before and after (JSON), for every
-- change made through the API or the web console, user and role changes and sign-ins included.
-- Rows are only ever inserted (see crates/store/src/audit.rs).
CREATE TABLE audit_log (
    id {id},
    at BIGINT NOT NULL,
    -- No foreign key: an entry outlives the user who made it (actor_name keeps who it was).
    actor_id BIGINT,
    actor_name TEXT NOT NULL,
    -- 'api' or 'console'.
    via TEXT NOT NULL,
    -- create, update, delete, start, pause, ..., login, login_failed, logout, import, upsert, ...
    action TEXT NOT NULL,
    -- campaign, contact_list, record, user, role, session, dnc_entry, ...
    entity_type TEXT NOT NULL,
    entity_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    -- 1: visible to a user limited to some campaigns only when every campaign in audit_campaigns
    -- is in their profile (and there is at least one); 0: not about any campaign.
    scoped BIGINT NOT NULL,
    before_value TEXT,
    after_value TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id);
CREATE INDEX audit_log_actor ON audit_log (actor_id);

-- The campaigns an entry is about (the campaign itself, the campaigns using a list, the
-- campaigns named in a user's profile, ...), for the campaigns-profile rule and the filter.
CREATE TABLE audit_campaigns (
    audit_id BIGINT NOT NULL REFERENCES audit_log (id) ON DELETE CASCADE,
    campaign_id BIGINT NOT NULL,
    PRIMARY KEY (audit_id, campaign_id)
);
CREATE INDEX audit_campaigns_campaign ON audit_campaigns (campaign_id);
