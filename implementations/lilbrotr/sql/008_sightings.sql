-- Sightings the finder cannot miss: every events_relays row carries the id
-- of the transaction that inserted it, and the finder scans in that order,
-- only as far as every transaction that could still add a row has ended.
--
-- seen_at is given by the writer (when it received the event), and a batch
-- commits some time after it was stamped: a scan in seen_at order could pass
-- a stamp before the batch holding it was visible, and never come back. Here
-- the database stamps each row with insert_xid, pg_current_xact_id(), as a
-- column default: whatever statement or function inserts the row. Every
-- transaction with an id below pg_snapshot_xmin(pg_current_snapshot()) has
-- ended, and none can get such an id any more, so the rows below that horizon
-- are final: a scan in (insert_xid, seen_at, event_id, relay_id) order up to
-- it passes no row that may still appear. A transaction left open, in any
-- database of the cluster, holds the scan back until it ends.
--
-- The rows archived before this file, and the finders' cursors, get the id of
-- the transaction applying it: among those rows the scan goes on in
-- (seen_at, event_id, relay_id) order from where it stood.
--
-- Every implementation provides the same functions. lilbrotr keeps neither
-- tags nor content, only tagvalues, so it finds the r tags of kind 10002 and
-- the d tag of kind 30166 only (see 006_finder.sql).

-- ---------------------------------------------------------------------------
-- events_relays.insert_xid
-- ---------------------------------------------------------------------------
-- pg_current_xact_id() is STABLE: the rows already there take the value of
-- this transaction without the table being rewritten.
ALTER TABLE events_relays
    ADD COLUMN insert_xid xid8 NOT NULL DEFAULT pg_current_xact_id();

COMMENT ON COLUMN events_relays.insert_xid IS
    'Id of the transaction that inserted the row (the top-level one), set by the column default; writers leave it out. Rows archived before the column existed have the id of the transaction that added it. The finder scans rows in (insert_xid, seen_at, event_id, relay_id) order up to pg_snapshot_xmin(pg_current_snapshot()), below which every transaction has ended, so a batch stamped (seen_at) before it committed is not passed by.';

-- The finder's scan order, which replaces the seen_at one.
DROP INDEX finder_events_relays_seen_at_idx;

CREATE INDEX finder_events_relays_insert_xid_idx
    ON events_relays (insert_xid, seen_at, event_id, relay_id);

COMMENT ON INDEX finder_events_relays_insert_xid_idx IS
    'The finder''s scan order over events_relays: finder_candidates() reads pages of it after a cursor.';

-- ---------------------------------------------------------------------------
-- finder_cursor.insert_xid
-- ---------------------------------------------------------------------------
ALTER TABLE finder_cursor
    ADD COLUMN insert_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE finder_cursor
    ALTER COLUMN insert_xid DROP DEFAULT;

COMMENT ON TABLE finder_cursor IS
    'How far each finder has scanned events_relays: the last sighting read, in (insert_xid, seen_at, event_id, relay_id) order. Delete a row to scan the whole archive again.';
COMMENT ON COLUMN finder_cursor.insert_xid IS
    'events_relays.insert_xid of the last sighting read.';

-- ---------------------------------------------------------------------------
-- finder_get_cursor, finder_set_cursor
-- ---------------------------------------------------------------------------
-- Their arguments and results change: the old ones go.
DROP FUNCTION finder_get_cursor(text);
DROP FUNCTION finder_set_cursor(text, bigint, bytea, integer, bigint);
DROP FUNCTION finder_candidates(bigint, bytea, integer, bigint, integer[], integer);

CREATE FUNCTION finder_get_cursor(p_name text)
RETURNS TABLE (insert_xid bigint, seen_at bigint, event_id bytea, relay_id integer)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT c.insert_xid::text::bigint, c.seen_at, c.event_id, c.relay_id
    FROM finder_cursor AS c
    WHERE c.name = p_name
$$;

COMMENT ON FUNCTION finder_get_cursor(text) IS
    'The cursor of the finder p_name (insert_xid as a bigint): one row, or none when it has not scanned anything yet.';

CREATE FUNCTION finder_set_cursor(
    p_name       text,
    p_insert_xid bigint,
    p_seen_at    bigint,
    p_event_id   bytea,
    p_relay_id   integer,
    p_updated_at bigint
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_moved integer;
BEGIN
    INSERT INTO finder_cursor AS c (name, insert_xid, seen_at, event_id, relay_id, updated_at)
    VALUES (p_name, p_insert_xid::text::xid8, p_seen_at, p_event_id, p_relay_id, p_updated_at)
    ON CONFLICT (name) DO UPDATE
        SET insert_xid = EXCLUDED.insert_xid,
            seen_at = EXCLUDED.seen_at,
            event_id = EXCLUDED.event_id,
            relay_id = EXCLUDED.relay_id,
            updated_at = EXCLUDED.updated_at
        WHERE (c.insert_xid, c.seen_at, c.event_id, c.relay_id)
              < (EXCLUDED.insert_xid, EXCLUDED.seen_at, EXCLUDED.event_id, EXCLUDED.relay_id);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved > 0;
END;
$$;

COMMENT ON FUNCTION finder_set_cursor(text, bigint, bigint, bytea, integer, bigint) IS
    'Moves the cursor of the finder p_name forward to the sighting (p_insert_xid, p_seen_at, p_event_id, p_relay_id), stamped p_updated_at; creates it when missing. A position not after the stored one is ignored, so a cursor never moves back. Returns whether it moved.';

-- ---------------------------------------------------------------------------
-- finder_candidates
-- ---------------------------------------------------------------------------
CREATE FUNCTION finder_candidates(
    p_after_insert_xid bigint,
    p_after_seen_at    bigint,
    p_after_event_id   bytea,
    p_after_relay_id   integer,
    p_kinds            integer[],
    p_limit            integer
)
RETURNS TABLE (insert_xid bigint, seen_at bigint, event_id bytea, relay_id integer, source text, url text)
LANGUAGE plpgsql
STABLE PARALLEL SAFE
AS $$
#variable_conflict use_column
DECLARE
    -- A STABLE function runs on its caller's snapshot: the horizon and the
    -- rows read below come from the same one.
    v_snapshot pg_snapshot := pg_current_snapshot();
    v_after    xid8 := coalesce(p_after_insert_xid::text::xid8, '0'::xid8);
BEGIN
    -- An id this cluster has not handed out: the database was restored from
    -- a dump of another cluster, whose ids mean nothing here. Scanning on
    -- would pass every row inserted since, so stop.
    IF v_after >= pg_snapshot_xmax(v_snapshot) THEN
        RAISE EXCEPTION 'finder_candidates: the cursor''s transaction id % is in this cluster''s future', v_after
            USING ERRCODE = 'data_exception',
                  HINT = 'The database comes from another cluster. Run UPDATE events_relays SET insert_xid = pg_current_xact_id() WHERE insert_xid >= pg_snapshot_xmax(pg_current_snapshot()), then delete the finder''s row in finder_cursor to scan the archive again.';
    END IF;

    RETURN QUERY
    WITH page AS (
        SELECT er.insert_xid, er.seen_at, er.event_id, er.relay_id
        FROM events_relays AS er
        WHERE (er.insert_xid, er.seen_at, er.event_id, er.relay_id)
              > (v_after,
                 coalesce(p_after_seen_at, -9223372036854775808),
                 coalesce(p_after_event_id, '\x'::bytea),
                 coalesce(p_after_relay_id, -2147483648))
          AND er.insert_xid < pg_snapshot_xmin(v_snapshot)
        ORDER BY er.insert_xid, er.seen_at, er.event_id, er.relay_id
        LIMIT greatest(p_limit, 1)
    ),
    -- The event's first row in scan order; rows before it in that order are
    -- all final, so each event is read exactly once.
    first_sightings AS (
        SELECT p.insert_xid, p.seen_at, p.event_id, p.relay_id, e.kind, e.tagvalues
        FROM page AS p
        JOIN events AS e ON e.id = p.event_id
        WHERE (p_kinds IS NULL OR e.kind = ANY (p_kinds))
          AND e.kind IN (10002, 30166)
          AND NOT EXISTS (
              SELECT 1
              FROM events_relays AS o
              WHERE o.event_id = p.event_id
                AND (o.insert_xid, o.seen_at, o.relay_id) < (p.insert_xid, p.seen_at, p.relay_id)
          )
    ),
    found AS (
        -- NIP-65 relay lists ('r:<url>') and NIP-66 relay discovery ('d:<url>').
        SELECT f.insert_xid, f.seen_at, f.event_id, f.relay_id,
               CASE f.kind WHEN 10002 THEN 'nip65' ELSE 'nip66' END AS source,
               substr(v.value, 3) AS url
        FROM first_sightings AS f
        CROSS JOIN LATERAL unnest(f.tagvalues) AS v (value)
        WHERE (f.kind = 10002 AND v.value LIKE 'r:%')
           OR (f.kind = 30166 AND v.value LIKE 'd:%')
    ),
    result AS (
        SELECT p.insert_xid, p.seen_at, p.event_id, p.relay_id, NULL::text AS source, NULL::text AS url
        FROM page AS p
        UNION ALL
        SELECT * FROM found
    )
    SELECT r.insert_xid::text::bigint, r.seen_at, r.event_id, r.relay_id, r.source, r.url
    FROM result AS r
    ORDER BY r.insert_xid, r.seen_at, r.event_id, r.relay_id, r.source NULLS FIRST;
END;
$$;

COMMENT ON FUNCTION finder_candidates(bigint, bigint, bytea, integer, integer[], integer) IS
    'One page of the finder''s scan: the first p_limit events_relays rows (sightings) after (p_after_insert_xid, p_after_seen_at, p_after_event_id, p_after_relay_id) in (insert_xid, seen_at, event_id, relay_id) order (from the start when they are NULL), among the rows inserted by a transaction older than every one still open (insert_xid < pg_snapshot_xmin(pg_current_snapshot())), so that no row can appear behind the page later. Each sighting gives one row with source and url NULL (the caller''s next cursor is the last of them), and, when it is the event''s first sighting in that order and the event''s kind is in p_kinds (any kind when NULL), one row per relay URL its tagvalues hold: source nip65 (''r:<url>'' of kind 10002) or nip66 (''d:<url>'' of kind 30166). lilbrotr stores no tags and no content, so it never returns the sources hint (relay hints of e and p tags) and contacts (kind 3 relay maps) that other implementations return, nor URLs longer than 256 bytes. URLs are returned as written; the caller validates and normalises them. insert_xid is returned as a bigint. Rows are in scan order, the NULL row of a sighting first. Raises data_exception when p_after_insert_xid is an id the cluster has not assigned yet (a database restored from another cluster).';
