-- A DNC list that is a copy of a national registry (US National DNC Registry, UK TPS/CTPS, or
-- any registry delivered as CSV): what it covers, how old its copy may be, and its schedule.
CREATE TABLE dnc_registries (
    list_id BIGINT PRIMARY KEY REFERENCES dnc_lists (id) ON DELETE CASCADE,
    -- us_national, uk_tps, uk_ctps, csv
    kind TEXT NOT NULL,
    -- JSON array of E.164 digit prefixes the registry covers ("1212" = area code 212, "44" = UK)
    covers TEXT NOT NULL,
    max_age_days BIGINT NOT NULL,
    -- When the data of the last full or change list applied was current (NULL: never imported)
    refreshed_at BIGINT,
    -- Scheduled import: a file on the server, read every `every_hours` (NULL: no schedule)
    source_path TEXT,
    source_format TEXT,
    every_hours BIGINT,
    next_import_at BIGINT,
    updated_at BIGINT NOT NULL
);

-- One import of a registry file, with its progress (readable while it runs).
CREATE TABLE dnc_import_runs (
    id {id},
    list_id BIGINT NOT NULL REFERENCES dnc_lists (id) ON DELETE CASCADE,
    -- us_full, us_changes, uk_tps, uk_tps_changes, csv
    format TEXT NOT NULL,
    file_name TEXT NOT NULL,
    -- running, done, failed
    state TEXT NOT NULL,
    bytes_total BIGINT NOT NULL,
    bytes_read BIGINT NOT NULL,
    rows_read BIGINT NOT NULL,
    added BIGINT NOT NULL,
    removed BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX dnc_import_runs_list ON dnc_import_runs (list_id, id);
