-- The finder of the `lilbrotr` implementation: where its scan of the archive
-- stands, and the relay URLs that newly archived events mention.
--
-- The scan follows events_relays in (seen_at, event_id, relay_id) order:
-- seen_at is when BigBrotr first received an event from a relay, so an event
-- archived today with a created_at of years ago is still scanned after
-- everything received before it. Each event is read once, at its first
-- sighting (the smallest (seen_at, relay_id) of its events_relays rows).
-- The application scans only sightings older than a settling delay, so that
-- batches committed out of seen_at order by concurrent writers are not
-- skipped. Every implementation provides the same functions.
--
-- lilbrotr keeps neither tags nor content, only tagvalues ('<letter>:<value>'
-- of each single-letter tag's first value, at most 256 bytes). So it finds:
--   * the r tags of kind 10002 (NIP-65 relay lists), as 'r:<url>';
--   * the d tag of kind 30166 (NIP-66 relay discovery), as 'd:<url>';
-- and it cannot find relay hints (the third element of e and p tags) or the
-- relay map in the content of kind 3, which were never stored. A URL longer
-- than 256 bytes is not in tagvalues either.

-- ---------------------------------------------------------------------------
-- finder_cursor
-- ---------------------------------------------------------------------------
CREATE TABLE finder_cursor (
    name       text    PRIMARY KEY,
    seen_at    bigint  NOT NULL,
    event_id   bytea   NOT NULL CHECK (octet_length(event_id) = 32),
    relay_id   integer NOT NULL,
    updated_at bigint  NOT NULL
);

COMMENT ON TABLE finder_cursor IS
    'How far each finder has scanned events_relays: the last sighting read, in (seen_at, event_id, relay_id) order. Delete a row to scan the whole archive again.';
COMMENT ON COLUMN finder_cursor.name IS
    'The finder''s name (service.name, by default finder); several finders keep separate cursors.';
COMMENT ON COLUMN finder_cursor.seen_at IS
    'events_relays.seen_at of the last sighting read (Unix seconds).';
COMMENT ON COLUMN finder_cursor.event_id IS
    'events_relays.event_id of the last sighting read.';
COMMENT ON COLUMN finder_cursor.relay_id IS
    'events_relays.relay_id of the last sighting read.';
COMMENT ON COLUMN finder_cursor.updated_at IS
    'When the cursor last moved (Unix seconds).';

-- The scan order; without it every page would read the whole table.
CREATE INDEX finder_events_relays_seen_at_idx
    ON events_relays (seen_at, event_id, relay_id);

COMMENT ON INDEX finder_events_relays_seen_at_idx IS
    'The finder''s scan order over events_relays: finder_candidates() reads pages of it after a cursor.';

-- ---------------------------------------------------------------------------
-- finder_get_cursor, finder_set_cursor
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION finder_get_cursor(p_name text)
RETURNS TABLE (seen_at bigint, event_id bytea, relay_id integer)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT c.seen_at, c.event_id, c.relay_id
    FROM finder_cursor AS c
    WHERE c.name = p_name
$$;

COMMENT ON FUNCTION finder_get_cursor(text) IS
    'The cursor of the finder p_name: one row, or none when it has not scanned anything yet.';

CREATE OR REPLACE FUNCTION finder_set_cursor(
    p_name       text,
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
    INSERT INTO finder_cursor AS c (name, seen_at, event_id, relay_id, updated_at)
    VALUES (p_name, p_seen_at, p_event_id, p_relay_id, p_updated_at)
    ON CONFLICT (name) DO UPDATE
        SET seen_at = EXCLUDED.seen_at,
            event_id = EXCLUDED.event_id,
            relay_id = EXCLUDED.relay_id,
            updated_at = EXCLUDED.updated_at
        WHERE (c.seen_at, c.event_id, c.relay_id)
              < (EXCLUDED.seen_at, EXCLUDED.event_id, EXCLUDED.relay_id);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved > 0;
END;
$$;

COMMENT ON FUNCTION finder_set_cursor(text, bigint, bytea, integer, bigint) IS
    'Moves the cursor of the finder p_name forward to the sighting (p_seen_at, p_event_id, p_relay_id), stamped p_updated_at; creates it when missing. A position not after the stored one is ignored, so a cursor never moves back. Returns whether it moved.';

-- ---------------------------------------------------------------------------
-- finder_candidates
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION finder_candidates(
    p_after_seen_at  bigint,
    p_after_event_id bytea,
    p_after_relay_id integer,
    p_before_seen_at bigint,
    p_kinds          integer[],
    p_limit          integer
)
RETURNS TABLE (seen_at bigint, event_id bytea, relay_id integer, source text, url text)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    WITH page AS (
        SELECT er.seen_at, er.event_id, er.relay_id
        FROM events_relays AS er
        WHERE (er.seen_at, er.event_id, er.relay_id)
              > (coalesce(p_after_seen_at, -9223372036854775808),
                 coalesce(p_after_event_id, '\x'::bytea),
                 coalesce(p_after_relay_id, -2147483648))
          AND er.seen_at < p_before_seen_at
        ORDER BY er.seen_at, er.event_id, er.relay_id
        LIMIT greatest(p_limit, 1)
    ),
    first_sightings AS (
        SELECT p.seen_at, p.event_id, p.relay_id, e.kind, e.tagvalues
        FROM page AS p
        JOIN events AS e ON e.id = p.event_id
        WHERE (p_kinds IS NULL OR e.kind = ANY (p_kinds))
          AND e.kind IN (10002, 30166)
          AND NOT EXISTS (
              SELECT 1
              FROM events_relays AS o
              WHERE o.event_id = p.event_id
                AND (o.seen_at, o.relay_id) < (p.seen_at, p.relay_id)
          )
    ),
    found AS (
        -- NIP-65 relay lists ('r:<url>') and NIP-66 relay discovery ('d:<url>').
        SELECT f.seen_at, f.event_id, f.relay_id,
               CASE f.kind WHEN 10002 THEN 'nip65' ELSE 'nip66' END AS source,
               substr(v.value, 3) AS url
        FROM first_sightings AS f
        CROSS JOIN LATERAL unnest(f.tagvalues) AS v (value)
        WHERE (f.kind = 10002 AND v.value LIKE 'r:%')
           OR (f.kind = 30166 AND v.value LIKE 'd:%')
    )
    SELECT p.seen_at, p.event_id, p.relay_id, NULL::text, NULL::text
    FROM page AS p
    UNION ALL
    SELECT * FROM found
    ORDER BY 1, 2, 3, 4 NULLS FIRST
$$;

COMMENT ON FUNCTION finder_candidates(bigint, bytea, integer, bigint, integer[], integer) IS
    'One page of the finder''s scan: the first p_limit events_relays rows (sightings) after (p_after_seen_at, p_after_event_id, p_after_relay_id) in that order (from the start when they are NULL) with seen_at < p_before_seen_at. Each sighting gives one row with source and url NULL (the caller''s next cursor is the last of them), and, when it is the event''s first sighting and the event''s kind is in p_kinds (any kind when NULL), one row per relay URL its tagvalues hold: source nip65 (''r:<url>'' of kind 10002) or nip66 (''d:<url>'' of kind 30166). lilbrotr stores no tags and no content, so it never returns the sources hint (relay hints of e and p tags) and contacts (kind 3 relay maps) that other implementations return, nor URLs longer than 256 bytes. URLs are returned as written; the caller validates and normalises them. Rows are ordered by (seen_at, event_id, relay_id), the NULL row of a sighting first.';

-- ---------------------------------------------------------------------------
-- finder_unknown_relays
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION finder_unknown_relays(p_urls text[])
RETURNS TABLE (url text)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT DISTINCT u.url
    FROM unnest(p_urls) AS u (url)
    WHERE u.url IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM relays AS r WHERE r.url = u.url)
    ORDER BY u.url
$$;

COMMENT ON FUNCTION finder_unknown_relays(text[]) IS
    'The elements of p_urls (normalised relay URLs) that no relays row has, each once, sorted.';
