"""0005: a full-text search document per candidate, indexed, kept in sync by triggers; backfilled here.

Triage search typed a term against a million candidates with ``LIKE '%term%'`` over five columns, a
full scan whenever the term is rare or absent (~920 ms at 200k). Each candidate now has one search
document in ``candidate_search``: the text a person reads (message contents, output, expected output,
notes, labels, one field per line; no JSON syntax), plus copies of ``status`` and ``priority`` so a
search can filter and order its matches without touching the wide candidate rows.

Triggers on ``candidates`` maintain it, so every writer (the builder, decisions, purge, a bulk insert)
keeps it in step and purged text leaves the index in the same transaction.

- SQLite: two FTS5 indexes over the document (external content, synced by triggers on
  ``candidate_search``): ``trigram`` answers substrings of 3+ characters, ``unicode61`` with prefix
  indexes answers 1-2 character word starts.
- PostgreSQL: a ``pg_trgm`` GIN index, which serves both (``ILIKE``). Without the extension (no right
  to create it) the table and triggers are still made and searches work, as scans; a warning says so.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

NAME = "0005_candidate_search"

log = logging.getLogger(__name__)

# Which candidate columns make up the document; a change to any of them rebuilds it.
TEXT_COLUMNS = ("input", "output_text", "expected_output", "notes", "labels")


# The queue's order over the documents, so a common term walks candidates by priority and reads each
# document by primary key (the same order as ix_candidates_queue_order, with or without a status).
ORDER_INDEXES = (
    "CREATE INDEX ix_candidate_search_queue ON candidate_search (status, priority DESC, candidate_id)",
    "CREATE INDEX ix_candidate_search_priority ON candidate_search (priority DESC, candidate_id)",
)


def _sqlite_doc(row: str) -> str:
    """The document as a SQLite expression over ``row`` (``new``/``old``/a table alias).

    Malformed JSON or unexpected shapes give an empty part instead of failing the writer's statement.
    """
    return f"""(
      coalesce((SELECT group_concat(CASE WHEN m.type = 'object' THEN CASE json_type(m.value, '$.content')
          WHEN 'text' THEN json_extract(m.value, '$.content')
          WHEN 'array' THEN (SELECT group_concat(json_extract(p.value, '$.text'), ' ')
                             FROM json_each(m.value, '$.content') AS p
                             WHERE p.type = 'object' AND json_type(p.value, '$.text') = 'text')
          END END, char(10))
        FROM json_each(CASE WHEN json_valid({row}.input) AND json_type({row}.input) = 'array'
                            THEN {row}.input ELSE '[]' END) AS m), '')
      || char(10) || coalesce({row}.output_text, '')
      || char(10) || coalesce({row}.expected_output, '')
      || char(10) || coalesce({row}.notes, '')
      || char(10) || coalesce((SELECT group_concat(l.value, char(10))
        FROM json_each(CASE WHEN json_valid({row}.labels) AND json_type({row}.labels) = 'array'
                            THEN {row}.labels ELSE '[]' END) AS l WHERE l.type = 'text'), '')
    )"""


def _sqlite(conn: Connection) -> None:
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in TEXT_COLUMNS)
    statements = [
        """CREATE TABLE candidate_search (
            doc_id INTEGER PRIMARY KEY,
            candidate_id VARCHAR(26) NOT NULL UNIQUE,
            status VARCHAR(20) NOT NULL,
            priority FLOAT NOT NULL,
            doc TEXT NOT NULL)""",
        f"""INSERT INTO candidate_search (candidate_id, status, priority, doc)
            SELECT c.id, c.status, c.priority, {_sqlite_doc("c")} FROM candidates AS c ORDER BY c.rowid""",
        *ORDER_INDEXES,
        """CREATE VIRTUAL TABLE candidate_search_trigram USING fts5(
            doc, content='candidate_search', content_rowid='doc_id', tokenize='trigram case_sensitive 0')""",
        """CREATE VIRTUAL TABLE candidate_search_words USING fts5(
            doc, content='candidate_search', content_rowid='doc_id',
            tokenize='unicode61 remove_diacritics 0', prefix='1 2', detail='none')""",
        "INSERT INTO candidate_search_trigram (candidate_search_trigram) VALUES ('rebuild')",
        "INSERT INTO candidate_search_words (candidate_search_words) VALUES ('rebuild')",
        """CREATE TRIGGER candidate_search_fts_insert AFTER INSERT ON candidate_search BEGIN
            INSERT INTO candidate_search_trigram (rowid, doc) VALUES (new.doc_id, new.doc);
            INSERT INTO candidate_search_words (rowid, doc) VALUES (new.doc_id, new.doc);
        END""",
        """CREATE TRIGGER candidate_search_fts_delete AFTER DELETE ON candidate_search BEGIN
            INSERT INTO candidate_search_trigram (candidate_search_trigram, rowid, doc)
                VALUES ('delete', old.doc_id, old.doc);
            INSERT INTO candidate_search_words (candidate_search_words, rowid, doc)
                VALUES ('delete', old.doc_id, old.doc);
        END""",
        """CREATE TRIGGER candidate_search_fts_update AFTER UPDATE OF doc ON candidate_search
        WHEN old.doc IS NOT new.doc BEGIN
            INSERT INTO candidate_search_trigram (candidate_search_trigram, rowid, doc)
                VALUES ('delete', old.doc_id, old.doc);
            INSERT INTO candidate_search_words (candidate_search_words, rowid, doc)
                VALUES ('delete', old.doc_id, old.doc);
            INSERT INTO candidate_search_trigram (rowid, doc) VALUES (new.doc_id, new.doc);
            INSERT INTO candidate_search_words (rowid, doc) VALUES (new.doc_id, new.doc);
        END""",
        f"""CREATE TRIGGER candidates_search_insert AFTER INSERT ON candidates BEGIN
            INSERT INTO candidate_search (candidate_id, status, priority, doc)
                VALUES (new.id, new.status, new.priority, {_sqlite_doc("new")});
        END""",
        """CREATE TRIGGER candidates_search_delete AFTER DELETE ON candidates BEGIN
            DELETE FROM candidate_search WHERE candidate_id = old.id;
        END""",
        f"""CREATE TRIGGER candidates_search_update AFTER UPDATE ON candidates BEGIN
            UPDATE candidate_search SET candidate_id = new.id, status = new.status, priority = new.priority,
                doc = CASE WHEN {changed} THEN {_sqlite_doc("new")} ELSE doc END
            WHERE candidate_id = old.id;
        END""",
    ]
    for statement in statements:
        conn.execute(text(statement))


_PG_DOC_FUNCTION = r"""
CREATE OR REPLACE FUNCTION workbench_candidate_doc(
    input TEXT, output_text TEXT, expected_output TEXT, notes TEXT, labels TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    messages TEXT := '';
    label_text TEXT := '';
BEGIN
    BEGIN
        SELECT coalesce(string_agg(CASE jsonb_typeof(m.value -> 'content')
                WHEN 'string' THEN m.value ->> 'content'
                WHEN 'array' THEN (
                    SELECT string_agg(p.value ->> 'text', ' ' ORDER BY p.ordinality)
                      FROM jsonb_array_elements(m.value -> 'content') WITH ORDINALITY AS p(value, ordinality)
                     WHERE jsonb_typeof(p.value) = 'object' AND jsonb_typeof(p.value -> 'text') = 'string')
                END, E'\n' ORDER BY m.ordinality), '')
          INTO messages
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(input::jsonb) = 'array' THEN input::jsonb
                                         ELSE '[]'::jsonb END) WITH ORDINALITY AS m(value, ordinality)
         WHERE jsonb_typeof(m.value) = 'object';
    EXCEPTION WHEN others THEN
        messages := '';
    END;
    BEGIN
        SELECT coalesce(string_agg(l.value #>> '{}', E'\n' ORDER BY l.ordinality), '')
          INTO label_text
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(labels::jsonb) = 'array' THEN labels::jsonb
                                         ELSE '[]'::jsonb END) WITH ORDINALITY AS l(value, ordinality)
         WHERE jsonb_typeof(l.value) = 'string';
    EXCEPTION WHEN others THEN
        label_text := '';
    END;
    RETURN messages || E'\n' || coalesce(output_text, '') || E'\n' || coalesce(expected_output, '')
        || E'\n' || coalesce(notes, '') || E'\n' || label_text;
END
$fn$"""

_PG_TRIGGER_FUNCTION = r"""
CREATE OR REPLACE FUNCTION workbench_candidate_search_sync() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO candidate_search (candidate_id, status, priority, doc)
        VALUES (NEW.id, NEW.status, NEW.priority,
                workbench_candidate_doc(NEW.input, NEW.output_text, NEW.expected_output, NEW.notes, NEW.labels));
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM candidate_search WHERE candidate_id = OLD.id;
        RETURN OLD;
    END IF;
    IF (OLD.input, OLD.output_text, OLD.expected_output, OLD.notes, OLD.labels)
       IS DISTINCT FROM (NEW.input, NEW.output_text, NEW.expected_output, NEW.notes, NEW.labels) THEN
        UPDATE candidate_search SET candidate_id = NEW.id, status = NEW.status, priority = NEW.priority,
               doc = workbench_candidate_doc(NEW.input, NEW.output_text, NEW.expected_output, NEW.notes, NEW.labels)
         WHERE candidate_id = OLD.id;
    ELSIF (OLD.id, OLD.status, OLD.priority) IS DISTINCT FROM (NEW.id, NEW.status, NEW.priority) THEN
        UPDATE candidate_search SET candidate_id = NEW.id, status = NEW.status, priority = NEW.priority
         WHERE candidate_id = OLD.id;
    END IF;
    RETURN NEW;
END
$fn$"""


def _pg_trgm_schema(conn: Connection) -> str | None:
    """The schema holding pg_trgm, installing it (in ``public`` when allowed) if it is not there yet.

    Installed once per database and shared: an extension inside a store's own schema would vanish with
    that schema and take every other store's index with it.
    """
    find = text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")
    found = conn.execute(find).scalar()
    if found:
        return str(found)
    for statement in ("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public", "CREATE EXTENSION IF NOT EXISTS pg_trgm"):
        savepoint = conn.begin_nested()
        try:
            conn.execute(text(statement))
        except Exception as exc:  # no privilege, no public schema, or a concurrent install
            savepoint.rollback()
            log.debug("pg_trgm: %s failed: %s", statement, exc)
        else:
            savepoint.commit()
        found = conn.execute(find).scalar()
        if found:
            return str(found)
    return None


def _postgresql(conn: Connection) -> None:
    conn.execute(
        text("""CREATE TABLE candidate_search (
        doc_id BIGSERIAL PRIMARY KEY,
        candidate_id VARCHAR(26) NOT NULL UNIQUE,
        status VARCHAR(20) NOT NULL,
        priority DOUBLE PRECISION NOT NULL,
        doc TEXT NOT NULL)""")
    )
    conn.execute(text(_PG_DOC_FUNCTION))
    conn.execute(text(_PG_TRIGGER_FUNCTION))
    conn.execute(
        text("""INSERT INTO candidate_search (candidate_id, status, priority, doc)
        SELECT id, status, priority, workbench_candidate_doc(input, output_text, expected_output, notes, labels)
        FROM candidates ORDER BY id""")
    )
    for statement in ORDER_INDEXES:
        conn.execute(text(statement))
    conn.execute(
        text("""CREATE TRIGGER candidates_search_sync AFTER INSERT OR UPDATE OR DELETE ON candidates
        FOR EACH ROW EXECUTE FUNCTION workbench_candidate_search_sync()""")
    )
    trgm = _pg_trgm_schema(conn)
    if trgm is None:
        log.warning(
            "PostgreSQL extension pg_trgm is not installed and could not be created: triage search "
            "scans candidates (slow on large stores). An administrator can run CREATE EXTENSION pg_trgm, "
            "then: CREATE INDEX ix_candidate_search_trgm ON candidate_search USING gin (doc gin_trgm_ops)"
        )
        return
    opclass = f'"{trgm}".gin_trgm_ops'
    conn.execute(text(f"CREATE INDEX ix_candidate_search_trgm ON candidate_search USING gin (doc {opclass})"))


def upgrade(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        _postgresql(conn)
    else:
        _sqlite(conn)
