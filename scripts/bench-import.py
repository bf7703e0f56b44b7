#!/usr/bin/env python3
"""Import benchmark (issue 3): a ROWS-row contact CSV with 3 phone columns, imported by Campana
(E.164 parsing and validation, in-file and in-list dedupe, per-row errors, all-or-nothing merge) next
to the database's own bulk loader on the same file in the same run: `sqlite3 .import` for SQLite,
`COPY` for PostgreSQL. Prints rows/s, the ratio, Campana's peak memory (max RSS) and where its time
went. Usage: scripts/bench-import.py [ROWS] [--pg URL]  (default 1,000,000 rows; PostgreSQL at
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
    results.append(("SQLite", "sqlite3 .import", base_s, ours_s, ours_rss, st, tm))

    if "--no-pg" not in sys.argv:
        db = "campana_bench_%d" % os.getpid()
        subprocess.run(["psql", pg_url, "-qc", "DROP DATABASE IF EXISTS %s" % db], check=True)
        subprocess.run(["psql", pg_url, "-qc", "CREATE DATABASE %s" % db], check=True)
        url = pg_url.rsplit("/", 1)[0] + "/" + db
        subprocess.run(["psql", url, "-qc", "CREATE TABLE contacts (external_id text, first_name text, last_name text, home_phone text, mobile text, work_phone text, zip text)"], check=True)
        base_s, _, _, _ = run_measured(["psql", url, "-qc", "\\copy contacts FROM '%s' CSV HEADER" % csv_path])
        ours_dir = os.path.join(work, "pg")
        os.makedirs(ours_dir)
        ours_s, ours_rss, st, tm = campana_import(["--database-url", url], csv_path, ours_dir)
        results.append(("PostgreSQL", "COPY", base_s, ours_s, ours_rss, st, tm))
        subprocess.run(["psql", pg_url, "-qc", "DROP DATABASE IF EXISTS %s" % db], check=True)

    print()
    print("| database | baseline | baseline rows/s | Campana rows/s | ratio | Campana peak RSS | parse+validate | stage | merge | records created | rejected |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, base, base_s, ours_s, rss, st, tm in results:
        print("| %s | %s | %.0f | %.0f | %.0f%% | %.0f MiB | %.1f s | %.1f s | %.1f s | %d | %d |" % (
            name, base, rows / base_s, rows / ours_s, 100.0 * base_s / ours_s, rss,
            tm["parse_validate_s"], tm["stage_s"], tm["merge_s"], st["records_created"], st["rows_rejected"]))
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
