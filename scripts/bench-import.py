#!/usr/bin/env python3
"""Import benchmark (issue 3): a ROWS-row contact CSV with 3 phone columns, imported by Campana
(E.164 parsing and validation, in-file and in-list dedupe, per-row errors, all-or-nothing merge) next
to the database's own bulk loader on the same file in the same run: `sqlite3 .import` for SQLite,
`COPY` for PostgreSQL. Prints rows/s, the ratio, Campana's peak memory (max RSS) and where its time
went, and the floor: the same records written by the database itself from the loader's table
(INSERT ... SELECT into Campana's `records`, with its indexes, no parsing or validation), the
least any import that keeps those records and indexes can spend. Usage: scripts/bench-import.py [ROWS] [--pg URL]  (default 1,000,000 rows; PostgreSQL at
CAMPANA_TEST_PG_URL or postgres://postgres@127.0.0.1:5432/postgres, skipped with --no-pg)."""

import json, os, random, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "campana")
AREA_CODES = ["212", "213", "312", "303", "305", "404", "415", "512", "602", "617", "702", "713", "818", "917", "206", "214"]


def generate(path, rows, seed=7):
    rnd = random.Random(seed)
    with open(path, "w", newline="") as f:
        f.write("external_id,first_name,last_name,home_phone,mobile,work_phone,zip\n")
        for i in range(rows):
            def num():
                return "+1%s%d%02d%04d" % (rnd.choice(AREA_CODES), rnd.randint(2, 9), rnd.randint(0, 99), rnd.randint(0, 9999))
            f.write("M%07d,Name%d,Family%d,%s,%s,%s,%05d\n" % (i, i % 997, i % 991, num(), num(), num(), rnd.randint(501, 99950)))


def run_measured(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    if status != 0:
        sys.exit("command failed: %s\n%s" % (" ".join(cmd), err))
    return secs, usage.ru_maxrss / 1024.0, out, err


# The records Campana writes for the benchmark file, written by the database from the loader's
# table: one per phone column, chain id = the loader's row, same columns as Campana's merge.
FLOOR_INSERT = """INSERT INTO records (list_id, chain_id, chain_position, external_id, phone, phone_type, record_type, record_status,
  postal_code, name, custom, created_at, updated_at)
SELECT 1, n, 1, external_id, home_phone, 'home', 'general', 'ready', zip, first_name || ' ' || last_name, '{}', 0, 0 FROM src
UNION ALL SELECT 1, n, 2, external_id, mobile, 'mobile', 'general', 'ready', zip, first_name || ' ' || last_name, '{}', 0, 0 FROM src
UNION ALL SELECT 1, n, 3, external_id, work_phone, 'work', 'general', 'ready', zip, first_name || ' ' || last_name, '{}', 0, 0 FROM src"""
CREATE_LIST = "INSERT INTO contact_lists (name, created_at, updated_at) VALUES ('floor', 0, 0)"


def floor_sqlite(base_db, work):
    d = os.path.join(work, "floor-sqlite")
    os.makedirs(d)
    subprocess.run([BIN, "--data-dir", d, "migrate"], check=True, capture_output=True)
    sql = "\n".join([
        "PRAGMA journal_mode = WAL;", "PRAGMA synchronous = NORMAL;", "PRAGMA cache_size = -65536;",  # as Campana's merge
        "ATTACH '%s' AS b;" % base_db, CREATE_LIST + ";",
        "CREATE TEMP VIEW src AS SELECT rowid AS n, * FROM b.contacts;",
        "BEGIN IMMEDIATE;", FLOOR_INSERT + ";", "COMMIT;"])
    secs, _, _, _ = run_measured(["sqlite3", os.path.join(d, "campana.db"), sql])
    return secs


def floor_postgres(url, work):
    os.makedirs(os.path.join(work, "floor-pg"))
    subprocess.run([BIN, "--database-url", url, "--data-dir", os.path.join(work, "floor-pg"), "migrate"], check=True, capture_output=True)
    sql = CREATE_LIST + "; CREATE VIEW src AS SELECT row_number() OVER () AS n, * FROM contacts; BEGIN; " + FLOOR_INSERT + "; COMMIT;"
    secs, _, _, _ = run_measured(["psql", url, "-qc", sql])
    return secs


def campana_import(db_args, csv_path, work):
    cmd = [BIN, *db_args, "--data-dir", work, "import", "--list", "bench", "--create-list", "--default-country", "US", "--timings", "--quiet", csv_path]
    secs, rss, out, err = run_measured(cmd)
    status = json.loads(out)
    timings = json.loads([l for l in err.splitlines() if l.startswith("timings: ")][-1][len("timings: "):])
    return secs, rss, status, timings


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rows = int(args[0]) if args else 1_000_000
    pg_url = os.environ.get("CAMPANA_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if "--pg" in sys.argv:
        pg_url = sys.argv[sys.argv.index("--pg") + 1]
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "campana"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="campana-bench-")
    csv_path = os.path.join(work, "contacts.csv")
    generate(csv_path, rows)
    size_mib = os.path.getsize(csv_path) / 2**20
    print("file: %d rows, 3 phone columns, %.0f MiB" % (rows, size_mib))
    results = []

    # SQLite: the sqlite3 shell's .import (one INSERT per row in a transaction, no validation).
    base_db = os.path.join(work, "baseline.db")
    base_s, base_rss, _, _ = run_measured(["sqlite3", base_db, ".mode csv", ".import %s contacts" % csv_path])
    ours_dir = os.path.join(work, "sqlite")
    os.makedirs(ours_dir)
    ours_s, ours_rss, st, tm = campana_import([], csv_path, ours_dir)
    results.append(("SQLite", "sqlite3 .import", base_s, ours_s, ours_rss, st, tm, floor_sqlite(base_db, work)))

    if "--no-pg" not in sys.argv:
        db = "campana_bench_%d" % os.getpid()
        subprocess.run(["psql", pg_url, "-qc", "DROP DATABASE IF EXISTS %s" % db], check=True)
        subprocess.run(["psql", pg_url, "-qc", "CREATE DATABASE %s" % db], check=True)
        url = pg_url.rsplit("/", 1)[0] + "/" + db
        subprocess.run(["psql", url, "-qc", "CREATE TABLE contacts (external_id text, first_name text, last_name text, home_phone text, mobile text, work_phone text, zip text)"], check=True)
        base_s, _, _, _ = run_measured(["psql", url, "-qc", "\\copy contacts FROM '%s' CSV HEADER" % csv_path])
        # The floor runs in the loader's database (it reads its table); Campana imports into another.
        floor_s = floor_postgres(url, work)
        db2 = db + "_campana"
        subprocess.run(["psql", pg_url, "-qc", "DROP DATABASE IF EXISTS %s" % db2], check=True)
        subprocess.run(["psql", pg_url, "-qc", "CREATE DATABASE %s" % db2], check=True)
        url2 = pg_url.rsplit("/", 1)[0] + "/" + db2
        ours_dir = os.path.join(work, "pg")
        os.makedirs(ours_dir)
        ours_s, ours_rss, st, tm = campana_import(["--database-url", url2], csv_path, ours_dir)
        results.append(("PostgreSQL", "COPY", base_s, ours_s, ours_rss, st, tm, floor_s))
        for d in (db, db2):
            subprocess.run(["psql", pg_url, "-qc", "DROP DATABASE IF EXISTS %s" % d], check=True)

    print()
    print("| database | baseline | baseline rows/s | Campana rows/s | ratio | Campana peak RSS | floor (INSERT ... SELECT) | floor ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, base, base_s, ours_s, rss, st, tm, floor_s in results:
        print("| %s | %s | %.0f | %.0f | %.1f%% | %.0f MiB | %.1f s, %.0f rows/s | %.0f%% |" % (
            name, base, rows / base_s, rows / ours_s, 100.0 * base_s / ours_s, rss, floor_s, rows / floor_s, 100.0 * base_s / floor_s))
    print()
    print("| database | Campana total | read+parse+stage (wall) | parse+validate (busy, threads) | stage | merge | records created | rejected |")
    print("|---|---|---|---|---|---|---|---|")
    for name, base, base_s, ours_s, rss, st, tm, floor_s in results:
        print("| %s | %.1f s | %.1f s | %.1f s (%d) | %.1f s | %.1f s | %d | %d |" % (
            name, ours_s, tm["read_stage_s"], tm["parse_validate_s"], tm["parse_threads"], tm["stage_s"], tm["merge_s"],
            st["records_created"], st["rows_rejected"]))
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
