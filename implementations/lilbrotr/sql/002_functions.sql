-- Stored functions of the `lilbrotr` implementation: the contract the
-- application calls by name. Every implementation provides the same names,
-- arguments and result types; here the content and tags passed in are not
-- stored (only the tag values derived from the tags).
--
-- Batch functions take one array per column (all of the same length) and do
-- the whole batch in one statement over unnest(...). Concurrency rules they
-- follow, so that many callers may insert overlapping batches at once:
--   * rows are inserted sorted by their key, so two callers wait for each
--     other's uncommitted keys in the same order and never deadlock;
--   * DISTINCT ON removes keys repeated within a batch;
--   * ON CONFLICT DO NOTHING skips rows that exist (the first insert wins);
--   * a foreign-key violation caused by a concurrent delete_orphan_nip11/66()
--     call (a row that existed when this call skipped it was deleted before
--     the end of the statement) is retried, and the missing row inserted
--     again; insert_events() and deletes of events or relays exclude each
--     other with an advisory lock instead (see events_relays in
--     001_tables.sql).
-- They rely on READ COMMITTED, PostgreSQL's default isolation level.

-- ---------------------------------------------------------------------------
-- tags_to_tagvalues
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tags_to_tagvalues(p_tags jsonb)
RETURNS text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(DISTINCT (t.tag ->> 0) || ':' || (t.tag ->> 1)), '{}')
    FROM jsonb_array_elements(
             CASE WHEN jsonb_typeof(p_tags) = 'array' THEN p_tags ELSE '[]'::jsonb END
         ) AS t (tag)
    WHERE jsonb_typeof(t.tag) = 'array'
      AND (t.tag ->> 0) ~ '^[A-Za-z]$'
      AND jsonb_typeof(t.tag -> 1) = 'string'
      -- A longer value could overflow a GIN index entry; nobody looks one up.
      AND octet_length(t.tag ->> 1) <= 256
$$;

COMMENT ON FUNCTION tags_to_tagvalues(jsonb) IS
    'The events.tagvalues of a tags array: ''<letter>:<value>'' for each tag whose first element is one ASCII letter and whose second element is a string of at most 256 bytes, without duplicates (sorted). Anything else (multi-letter names, single-element tags, longer values, a non-array) contributes nothing.';

-- ---------------------------------------------------------------------------
-- insert_relays
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION insert_relays(
    p_urls        text[],
    p_networks    text[],
    p_inserted_at bigint
)
RETURNS TABLE (ord integer, relay_id integer)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    IF cardinality(p_networks) IS DISTINCT FROM cardinality(p_urls) THEN
        RAISE EXCEPTION 'insert_relays: p_urls has % elements but p_networks has %',
            cardinality(p_urls), cardinality(p_networks)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO relays (url, network, inserted_at)
    SELECT DISTINCT ON (u.url) u.url, u.network, p_inserted_at
    FROM unnest(p_urls, p_networks) WITH ORDINALITY AS u (url, network, ord)
    ORDER BY u.url, u.ord
    ON CONFLICT (url) DO NOTHING;

    -- A second statement, hence a new snapshot: it sees the relays that
    -- concurrent callers committed while the INSERT above waited for them.
    RETURN QUERY
    SELECT u.ord::integer, r.id
    FROM unnest(p_urls) WITH ORDINALITY AS u (url, ord)
    JOIN relays AS r ON r.url = u.url
    ORDER BY u.ord;
END;
$$;

COMMENT ON FUNCTION insert_relays(text[], text[], bigint) IS
    'Records relays (p_urls[i] on network p_networks[i], inserted_at p_inserted_at) that are not yet known, and returns one row (ord, relay_id) per input element, new or existing, where ord is the element''s 1-based position, in input order. A URL repeated in the input is inserted once (with its first network) and returned at each position.';

-- ---------------------------------------------------------------------------
-- insert_events
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION insert_events(
    p_ids              bytea[],
    p_pubkeys          bytea[],
    p_created_at       bigint[],
    p_kinds            integer[],
    p_tags             jsonb[],
    p_tags_raw         bytea[],
    p_contents         text[],
    p_contents_raw     bytea[],
    p_sigs             bytea[],
    p_relay_ids        integer[],
    p_seen_at          bigint[],
    p_tagvalues        text[] DEFAULT NULL,
    p_tagvalue_owners  integer[] DEFAULT NULL
)
RETURNS TABLE (events_inserted bigint, relations_inserted bigint)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_n          integer := cardinality(p_ids);
    v_events     bigint;
    v_relations  bigint;
    v_missing    integer;
BEGIN
    IF cardinality(p_pubkeys) IS DISTINCT FROM v_n
       OR cardinality(p_created_at) IS DISTINCT FROM v_n
       OR cardinality(p_kinds) IS DISTINCT FROM v_n
       OR cardinality(p_tags) IS DISTINCT FROM v_n
       OR (p_tags_raw IS NOT NULL AND cardinality(p_tags_raw) IS DISTINCT FROM v_n)
       OR cardinality(p_contents) IS DISTINCT FROM v_n
       OR (p_contents_raw IS NOT NULL AND cardinality(p_contents_raw) IS DISTINCT FROM v_n)
       OR cardinality(p_sigs) IS DISTINCT FROM v_n
       OR cardinality(p_relay_ids) IS DISTINCT FROM v_n
       OR cardinality(p_seen_at) IS DISTINCT FROM v_n
    THEN
        RAISE EXCEPTION 'insert_events: every array argument must have % elements, like p_ids', v_n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_tagvalue_owners) IS DISTINCT FROM cardinality(p_tagvalues) THEN
        RAISE EXCEPTION 'insert_events: p_tagvalue_owners must have one element per element of p_tagvalues'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Shared with the other inserts; deletes of events or relays take it
    -- exclusively (see events_relays). Held until the transaction ends.
    PERFORM pg_advisory_xact_lock_shared(1650619506);

    SELECT min(r.id) INTO v_missing
    FROM (SELECT DISTINCT unnest(p_relay_ids) AS id) AS r
    WHERE NOT EXISTS (SELECT 1 FROM relays WHERE relays.id = r.id);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert_events: relay % does not exist', v_missing
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'events_relays_relay_id_fkey';
    END IF;

    WITH input AS (
        SELECT *
        FROM unnest(p_ids, p_pubkeys, p_created_at, p_kinds, p_tags, p_tags_raw,
                    p_contents, p_contents_raw, p_sigs, p_relay_ids, p_seen_at)
             WITH ORDINALITY AS i (id, pubkey, created_at, kind, tags, tags_raw,
                                   content, content_raw, sig, relay_id, seen_at, ord)
    ),
    tagvalues AS (
        SELECT t.owner, array_agg(DISTINCT t.value) AS tagvalues
        FROM unnest(p_tagvalues, p_tagvalue_owners) AS t (value, owner)
        GROUP BY t.owner
    ),
    new_events AS (
        -- Content and tags are not stored here: only the tag values.
        INSERT INTO events (id, pubkey, created_at, kind, sig, tagvalues)
        SELECT DISTINCT ON (i.id)
               i.id, i.pubkey, i.created_at, i.kind, i.sig,
               CASE WHEN p_tagvalues IS NULL THEN tags_to_tagvalues(i.tags)
                    ELSE coalesce(t.tagvalues, '{}')
               END
        FROM input AS i
        LEFT JOIN tagvalues AS t ON t.owner = i.ord
        ORDER BY i.id, i.ord
        ON CONFLICT (id) DO NOTHING
        RETURNING 1
    ),
    new_relations AS (
        INSERT INTO events_relays (event_id, relay_id, seen_at)
        SELECT DISTINCT ON (i.id, i.relay_id) i.id, i.relay_id, i.seen_at
        FROM input AS i
        ORDER BY i.id, i.relay_id, i.seen_at
        ON CONFLICT (event_id, relay_id) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM new_events), (SELECT count(*) FROM new_relations)
    INTO v_events, v_relations;

    events_inserted := v_events;
    relations_inserted := v_relations;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION insert_events(bytea[], bytea[], bigint[], integer[], jsonb[], bytea[], text[], bytea[], bytea[], integer[], bigint[], text[], integer[]) IS
    'Archives a batch of events and where each was seen: element i is event p_ids[i] (pubkey, created_at, kind, tags, tags_raw, content, content_raw, sig) received from relay p_relay_ids[i] at p_seen_at[i]. tags/content are the queryable forms (U+0000 replaced by U+FFFD); tags_raw/content_raw the exact originals, NULL unless a U+0000 made them differ (p_tags_raw and p_contents_raw may also be NULL as a whole). Existing events and (event, relay) pairs are left as they are; an event or pair repeated in the batch counts once (earliest seen_at). The signature is not checked here. The tag values of event i are the elements of p_tagvalues whose p_tagvalue_owners element is i (1-based), as tags_to_tagvalues() computes them (order and repeats do not matter); when p_tagvalues is NULL they are computed here with tags_to_tagvalues(). A relay id that does not exist raises foreign_key_violation (constraint events_relays_relay_id_fkey) and stores nothing. Returns one row: the number of new events and of new (event, relay) pairs. lilbrotr stores only the tag values derived from tags; tags_raw, content and content_raw are accepted and ignored.';

-- ---------------------------------------------------------------------------
-- insert_relay_metadata
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION insert_relay_metadata(
    p_relay_ids    integer[],
    p_generated_at bigint[],
    p_connected    boolean[],
    p_nip11_ids    bytea[],
    p_nip11_data   jsonb[],
    p_nip66_ids    bytea[],
    p_nip66_data   jsonb[]
)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_n          integer := cardinality(p_relay_ids);
    v_nip11      bigint;
    v_nip66      bigint;
    v_metadata   bigint;
    v_constraint text;
BEGIN
    IF cardinality(p_generated_at) IS DISTINCT FROM v_n
       OR cardinality(p_connected) IS DISTINCT FROM v_n
       OR (p_nip11_ids IS NOT NULL AND cardinality(p_nip11_ids) IS DISTINCT FROM v_n)
       OR (p_nip11_data IS NOT NULL AND cardinality(p_nip11_data) IS DISTINCT FROM v_n)
       OR (p_nip66_ids IS NOT NULL AND cardinality(p_nip66_ids) IS DISTINCT FROM v_n)
       OR (p_nip66_data IS NOT NULL AND cardinality(p_nip66_data) IS DISTINCT FROM v_n)
    THEN
        RAISE EXCEPTION 'insert_relay_metadata: every array argument must have % elements, like p_relay_ids', v_n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR v_attempt IN 1..3 LOOP
        BEGIN
            WITH input AS (
                SELECT *
                FROM unnest(p_relay_ids, p_generated_at, p_connected,
                            p_nip11_ids, p_nip11_data, p_nip66_ids, p_nip66_data)
                     WITH ORDINALITY AS i (relay_id, generated_at, connected,
                                           nip11_id, nip11_data, nip66_id, nip66_data, ord)
            ),
            new_nip11 AS (
                INSERT INTO nip11 (id, data)
                SELECT DISTINCT ON (i.nip11_id) i.nip11_id, i.nip11_data
                FROM input AS i
                WHERE i.nip11_id IS NOT NULL
                ORDER BY i.nip11_id, i.ord
                ON CONFLICT (id) DO NOTHING
                RETURNING 1
            ),
            new_nip66 AS (
                INSERT INTO nip66 (id, data)
                SELECT DISTINCT ON (i.nip66_id) i.nip66_id, i.nip66_data
                FROM input AS i
                WHERE i.nip66_id IS NOT NULL
                ORDER BY i.nip66_id, i.ord
                ON CONFLICT (id) DO NOTHING
                RETURNING 1
            ),
            new_metadata AS (
                INSERT INTO relay_metadata (relay_id, generated_at, connected, nip11_id, nip66_id)
                SELECT DISTINCT ON (i.relay_id, i.generated_at)
                       i.relay_id, i.generated_at, i.connected, i.nip11_id, i.nip66_id
                FROM input AS i
                ORDER BY i.relay_id, i.generated_at, i.ord
                ON CONFLICT (relay_id, generated_at) DO NOTHING
                RETURNING 1
            )
            -- Read in this order, so that every caller inserts in the same
            -- order: nip11 rows, nip66 rows, then relay_metadata rows.
            SELECT (SELECT count(*) FROM new_nip11),
                   (SELECT count(*) FROM new_nip66),
                   (SELECT count(*) FROM new_metadata)
            INTO v_nip11, v_nip66, v_metadata;
            EXIT;
        EXCEPTION WHEN foreign_key_violation THEN
            -- An orphan document this batch references was deleted
            -- concurrently; the next attempt inserts it again. A missing
            -- relay is an error.
            GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
            IF v_constraint NOT IN ('relay_metadata_nip11_id_fkey', 'relay_metadata_nip66_id_fkey')
               OR v_attempt = 3 THEN
                RAISE;
            END IF;
        END;
    END LOOP;

    RETURN v_metadata;
END;
$$;

COMMENT ON FUNCTION insert_relay_metadata(integer[], bigint[], boolean[], bytea[], jsonb[], bytea[], jsonb[]) IS
    'Records a batch of relay checks: element i is relay p_relay_ids[i] checked at p_generated_at[i], connected or not, with NIP-11 document p_nip11_data[i] of hash p_nip11_ids[i] and NIP-66 document p_nip66_data[i] of hash p_nip66_ids[i] (a NULL id means no document, and its data is ignored; the four document arrays may also be NULL as a whole). Documents are stored once per hash; an existing (relay, generated_at) row is left as it is. Returns the number of new relay_metadata rows.';

-- ---------------------------------------------------------------------------
-- delete_orphan_events, delete_orphan_nip11, delete_orphan_nip66
-- ---------------------------------------------------------------------------
-- delete_orphan_events() excludes insert_events() with the advisory lock of
-- events_relays (see 001_tables.sql). The two others run in two statements:
-- the first locks up to p_limit orphans (FOR UPDATE SKIP LOCKED: rows a
-- concurrent insert is referencing right now are skipped, and concurrent
-- cleanups never wait for each other); the second, with a new snapshot,
-- deletes those still unreferenced. Once locked, a row cannot gain a
-- committed reference (the foreign-key check of the referencing insert waits
-- for the lock), so nothing that a concurrent insert has just attached is
-- deleted.

CREATE OR REPLACE FUNCTION delete_orphan_events(p_limit integer)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'delete_orphan_events: p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Before looking for orphans: waits for the insert_events() calls in
    -- flight, and none starts until this transaction ends, so no event found
    -- unreferenced here gains a reference before it is deleted.
    PERFORM pg_advisory_xact_lock(1650619506);

    DELETE FROM events AS e
    WHERE e.id IN (
        SELECT o.id
        FROM events AS o
        WHERE NOT EXISTS (SELECT 1 FROM events_relays AS er WHERE er.event_id = o.id)
        LIMIT p_limit
    );
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

COMMENT ON FUNCTION delete_orphan_events(integer) IS
    'Deletes at most p_limit events that no events_relays row references (their relays were deleted) and returns how many. Call it until it returns 0.';

CREATE OR REPLACE FUNCTION delete_orphan_nip11(p_limit integer)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_ids     bytea[];
    v_deleted bigint;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'delete_orphan_nip11: p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT array_agg(o.id) INTO v_ids
    FROM (
        SELECT n.id
        FROM nip11 AS n
        WHERE NOT EXISTS (SELECT 1 FROM relay_metadata AS m WHERE m.nip11_id = n.id)
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) AS o;

    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;

    DELETE FROM nip11 AS n
    WHERE n.id = ANY (v_ids)
      AND NOT EXISTS (SELECT 1 FROM relay_metadata AS m WHERE m.nip11_id = n.id);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

COMMENT ON FUNCTION delete_orphan_nip11(integer) IS
    'Deletes at most p_limit NIP-11 documents that no relay_metadata row references and returns how many. Call it until it returns 0.';

CREATE OR REPLACE FUNCTION delete_orphan_nip66(p_limit integer)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_ids     bytea[];
    v_deleted bigint;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'delete_orphan_nip66: p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT array_agg(o.id) INTO v_ids
    FROM (
        SELECT n.id
        FROM nip66 AS n
        WHERE NOT EXISTS (SELECT 1 FROM relay_metadata AS m WHERE m.nip66_id = n.id)
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) AS o;

    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;

    DELETE FROM nip66 AS n
    WHERE n.id = ANY (v_ids)
      AND NOT EXISTS (SELECT 1 FROM relay_metadata AS m WHERE m.nip66_id = n.id);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

COMMENT ON FUNCTION delete_orphan_nip66(integer) IS
    'Deletes at most p_limit NIP-66 documents that no relay_metadata row references and returns how many. Call it until it returns 0.';

-- ---------------------------------------------------------------------------
-- Read helpers
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION get_relay_by_url(p_url text)
RETURNS TABLE (id integer, url text, network text, inserted_at bigint)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT r.id, r.url, r.network, r.inserted_at
    FROM relays AS r
    WHERE r.url = p_url
$$;

COMMENT ON FUNCTION get_relay_by_url(text) IS
    'The relay with that exact (normalised) URL: one row, or none.';

CREATE OR REPLACE FUNCTION get_event_by_id(p_id bytea)
RETURNS TABLE (
    id          bytea,
    pubkey      bytea,
    created_at  bigint,
    kind        integer,
    tags        jsonb,
    tags_raw    bytea,
    content     text,
    content_raw bytea,
    sig         bytea
)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    -- Tags and content are not stored: fixed empty values in their place.
    SELECT e.id, e.pubkey, e.created_at, e.kind, '[]'::jsonb, NULL::bytea,
           ''::text, NULL::bytea, e.sig
    FROM events AS e
    WHERE e.id = p_id
$$;

COMMENT ON FUNCTION get_event_by_id(bytea) IS
    'The event with that id: one row, or none. lilbrotr stores neither tags nor content: tags is always ''[]'', content always '''', tags_raw and content_raw always NULL, so the row does not reproduce the event (its id and signature do not verify against it).';

CREATE OR REPLACE FUNCTION relay_exists(p_url text)
RETURNS boolean
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (SELECT 1 FROM relays AS r WHERE r.url = p_url)
$$;

COMMENT ON FUNCTION relay_exists(text) IS
    'Whether a relay with that exact (normalised) URL is recorded.';

CREATE OR REPLACE FUNCTION event_exists(p_id bytea)
RETURNS boolean
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (SELECT 1 FROM events AS e WHERE e.id = p_id)
$$;

COMMENT ON FUNCTION event_exists(bytea) IS
    'Whether an event with that id is archived.';
