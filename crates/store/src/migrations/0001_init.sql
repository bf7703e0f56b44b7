-- Campana schema v1. One source for SQLite and PostgreSQL: `{id}` becomes the dialect's
-- auto-increment primary key. Times are BIGINT milliseconds since the Unix epoch (UTC);
-- flags are BIGINT 0/1; structured values are JSON text; dates are TEXT YYYY-MM-DD.

CREATE TABLE campaign_groups (
    id {id},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE agent_groups (
    id {id},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE scripts (
    id {id},
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE settings_profiles (
    id {id},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    is_default BIGINT NOT NULL DEFAULT 0,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX settings_profiles_one_default ON settings_profiles (is_default) WHERE is_default = 1;

CREATE TABLE campaigns (
    id {id},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    agent_notes TEXT NOT NULL DEFAULT '',
    start_date TEXT,
    end_date TEXT,
    daily_start TEXT NOT NULL,
    daily_end TEXT NOT NULL,
    weekdays TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    priority BIGINT NOT NULL DEFAULT 0,
    group_id BIGINT REFERENCES campaign_groups (id) ON DELETE SET NULL,
    profile_id BIGINT REFERENCES settings_profiles (id),
    overrides TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX campaigns_group ON campaigns (group_id);

CREATE TABLE contact_lists (
    id {id},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    columns TEXT NOT NULL DEFAULT '[]',
    mapping TEXT,
    default_country TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE campaign_lists (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    list_id BIGINT NOT NULL REFERENCES contact_lists (id),
    position BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, list_id)
);
CREATE INDEX campaign_lists_list ON campaign_lists (list_id);

CREATE TABLE records (
    id {id},
    list_id BIGINT NOT NULL REFERENCES contact_lists (id) ON DELETE CASCADE,
    chain_id BIGINT NOT NULL,
    chain_position BIGINT NOT NULL,
    external_id TEXT,
    phone TEXT NOT NULL,
    phone_type TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_status TEXT NOT NULL,
    attempts_total BIGINT NOT NULL DEFAULT 0,
    attempts_today BIGINT NOT NULL DEFAULT 0,
    attempts_day TEXT,
    dial_from BIGINT,
    dial_until BIGINT,
    time_zone TEXT,
    postal_code TEXT,
    name TEXT NOT NULL DEFAULT '',
    sort_value TEXT,
    custom TEXT NOT NULL DEFAULT '{}',
    last_result TEXT,
    last_call_at BIGINT,
    callback_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX records_list_phone ON records (list_id, phone);
CREATE INDEX records_list_chain ON records (list_id, chain_id, chain_position);
CREATE UNIQUE INDEX records_list_external ON records (list_id, external_id, chain_position);

-- One row per phone of each staged customer; merged into records in one transaction when the
-- import commits, deleted when it fails or is cancelled (so the list never holds half an import).
CREATE TABLE import_staging (
    import_id BIGINT NOT NULL,
    chain_key BIGINT NOT NULL,
    chain_position BIGINT NOT NULL,
    target_chain_id BIGINT,
    external_id TEXT,
    phone TEXT NOT NULL,
    phone_type TEXT NOT NULL,
    record_type TEXT NOT NULL,
    dial_from BIGINT,
    dial_until BIGINT,
    time_zone TEXT,
    postal_code TEXT,
    name TEXT NOT NULL,
    sort_value TEXT,
    custom TEXT NOT NULL
);
CREATE INDEX import_staging_key ON import_staging (import_id, chain_key);

CREATE TABLE imports (
    id {id},
    list_id BIGINT NOT NULL REFERENCES contact_lists (id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    state TEXT NOT NULL,
    options TEXT NOT NULL,
    rows_read BIGINT NOT NULL DEFAULT 0,
    rows_staged BIGINT NOT NULL DEFAULT 0,
    rows_rejected BIGINT NOT NULL DEFAULT 0,
    rows_duplicate_in_file BIGINT NOT NULL DEFAULT 0,
    rows_duplicate_in_list BIGINT NOT NULL DEFAULT 0,
    customers_created BIGINT NOT NULL DEFAULT 0,
    customers_updated BIGINT NOT NULL DEFAULT 0,
    records_created BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX imports_list ON imports (list_id);

CREATE TABLE import_errors (
    import_id BIGINT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    row_number BIGINT NOT NULL,
    column_name TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX import_errors_import ON import_errors (import_id, row_number);

CREATE TABLE dnc_lists (
    id {id},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    is_internal BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE dnc_entries (
    list_id BIGINT NOT NULL REFERENCES dnc_lists (id) ON DELETE CASCADE,
    phone TEXT NOT NULL,
    expires_at BIGINT,
    reason TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (list_id, phone)
);
CREATE INDEX dnc_entries_phone ON dnc_entries (phone);

CREATE TABLE dispositions (
    id {id},
    name TEXT NOT NULL,
    colour TEXT NOT NULL,
    is_success BIGINT NOT NULL DEFAULT 0,
    is_final BIGINT NOT NULL DEFAULT 0,
    is_callback BIGINT NOT NULL DEFAULT 0,
    is_do_not_call BIGINT NOT NULL DEFAULT 0,
    profile_id BIGINT REFERENCES settings_profiles (id) ON DELETE CASCADE,
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX dispositions_name ON dispositions (COALESCE(profile_id, 0), COALESCE(campaign_id, 0), name);

CREATE TABLE manager_tags (
    id {id},
    name TEXT NOT NULL,
    colour TEXT NOT NULL,
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX manager_tags_name ON manager_tags (COALESCE(campaign_id, 0), name);

CREATE TABLE roles (
    id {id},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    privileges TEXT NOT NULL,
    builtin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    id {id},
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    role_id BIGINT NOT NULL REFERENCES roles (id),
    campaigns_profile TEXT NOT NULL,
    agent_group_ids TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every dial, persisted before telephony is told to place it; the result is filled in as it arrives.
CREATE TABLE call_attempts (
    id {id},
    call_id BIGINT NOT NULL UNIQUE,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    record_id BIGINT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    phone TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    answered_at BIGINT,
    ended_at BIGINT,
    result TEXT,
    agent_id BIGINT,
    disposition_id BIGINT,
    notes TEXT NOT NULL DEFAULT ''
);
CREATE INDEX call_attempts_record ON call_attempts (record_id);
CREATE INDEX call_attempts_campaign ON call_attempts (campaign_id, started_at);

INSERT INTO dnc_lists (name, description, is_internal, created_at, updated_at)
    VALUES ('Internal', 'Numbers agents and customers asked not to call; checked by every campaign.', 1, 0, 0);
INSERT INTO settings_profiles (name, description, is_default, settings, created_at, updated_at)
    VALUES ('Default', 'Used by campaigns that name no profile.', 1, '{}', 0, 0);
INSERT INTO roles (name, description, privileges, builtin, created_at, updated_at) VALUES
    ('administrator', 'Everything.', '["campaigns_view","campaigns_edit","lists_import","dnc","users_roles","reports","agent"]', 1, 0, 0),
    ('supervisor', 'Runs and watches campaigns, imports lists, manages DNC and reports.', '["campaigns_view","campaigns_edit","lists_import","dnc","reports"]', 1, 0, 0),
    ('agent', 'Takes calls.', '["agent"]', 1, 0, 0);
