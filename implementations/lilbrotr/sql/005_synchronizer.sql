-- The synchronizer's state in the `lilbrotr` implementation (the same as
-- `bigbrotr`'s): one cursor and one lease per relay, and the functions that
-- claim, renew and release leases and advance cursors. Every implementation
-- provides the same functions with the same arguments and results.
--
-- Leases let several synchronizer processes, on one machine or many, share
-- the relays: a relay is synced by the worker holding its lease, claimed with
-- FOR UPDATE SKIP LOCKED so that concurrent claims never wait for each other
-- nor take the same relay. A lease expires unless renewed, so the relays of a
-- worker that crashed are claimed by the others once their leases run out.
-- Lease times come from the database clock, so the workers' clocks do not
-- matter.
--
-- The cursor of a relay advances only after the events it covers are
-- committed: insert_events() commits each batch in its own transaction, and
-- sync_advance_cursor() is called right after that commit. A crash between
-- the two loses no event; the batch is fetched again and found archived.

-- ---------------------------------------------------------------------------
-- sync_cursors
-- ---------------------------------------------------------------------------
CREATE TABLE sync_cursors (
    relay_id       integer PRIMARY KEY REFERENCES relays (id) ON DELETE CASCADE,
    created_at     bigint,
    event_id       bytea   CHECK (octet_length(event_id) = 32),
    filter_hash    bytea   CHECK (octet_length(filter_hash) = 32),
    updated_at     bigint  NOT NULL,
    lease_worker   text    CHECK (lease_worker <> ''),
    lease_until    bigint,
    last_synced_ms bigint,
    CHECK (event_id IS NULL OR created_at IS NOT NULL),
    CHECK ((lease_worker IS NULL) = (lease_until IS NULL))
);

-- The order in which relays are claimed: never synced first, then the
-- longest unsynced.
CREATE INDEX sync_cursors_last_synced_ms_idx
    ON sync_cursors (last_synced_ms ASC NULLS FIRST, relay_id);

COMMENT ON TABLE sync_cursors IS
    'Synchronizer state, one row per relay it has considered: how far the relay''s events are archived (the cursor) and which worker syncs it now (the lease). Written only by the sync_* functions.';
COMMENT ON COLUMN sync_cursors.relay_id IS
    'The relay (relays.id); the row goes with the relay.';
COMMENT ON COLUMN sync_cursors.created_at IS
    'Cursor, first part (Unix seconds): every event of the relay matching the filter of filter_hash and created before this second is archived, with provenance to the relay. NULL: nothing archived yet.';
COMMENT ON COLUMN sync_cursors.event_id IS
    'Cursor, second part: NULL when every matching event of the second created_at is archived too; otherwise the events of that second are archived up to and including this id, in byte order.';
COMMENT ON COLUMN sync_cursors.filter_hash IS
    'SHA-256 of the filter (kinds, authors, tags) the cursor was walked with; a worker with another filter starts the relay over. NULL: no cursor yet.';
COMMENT ON COLUMN sync_cursors.updated_at IS
    'When the row was created or its cursor last moved (Unix seconds, database clock).';
COMMENT ON COLUMN sync_cursors.lease_worker IS
    'The worker holding the lease: the only one that may sync the relay and move its cursor. NULL: not leased.';
COMMENT ON COLUMN sync_cursors.lease_until IS
    'When the lease expires unless renewed (Unix seconds, database clock); an expired lease may be claimed by any worker. NULL exactly when lease_worker is.';
COMMENT ON COLUMN sync_cursors.last_synced_ms IS
    'When a worker last released the relay after syncing it, in Unix milliseconds (database clock), precise enough to tell a sync that ended just before a cycle began from one that ended just after; relays are claimed never synced first, then least recently synced. NULL: never synced.';
COMMENT ON INDEX sync_cursors_last_synced_ms_idx IS
    'The claim order of sync_claim_relays().';

-- ---------------------------------------------------------------------------
-- sync_claim_relays
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sync_claim_relays(
    p_worker          text,
    p_networks        text[],
    p_extra_relay_ids integer[],
    p_exclude_ids     integer[],
    p_synced_before_ms bigint,
    p_lease_seconds   integer,
    p_limit           integer
)
RETURNS TABLE (
    relay_id          integer,
    url               text,
    network           text,
    max_limit         integer,
    cursor_created_at bigint,
    cursor_event_id   bytea,
    filter_hash       bytea
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
BEGIN
    IF p_worker IS NULL OR p_worker = '' THEN
        RAISE EXCEPTION 'sync_claim_relays: p_worker must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_lease_seconds IS NULL OR p_lease_seconds < 1 THEN
        RAISE EXCEPTION 'sync_claim_relays: p_lease_seconds must be at least 1, not %', p_lease_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- A row for every candidate, so that there is a row to lock. Sorted by
    -- key, so that concurrent callers never deadlock.
    INSERT INTO sync_cursors (relay_id, updated_at)
    SELECT c.id, v_now
    FROM (
        SELECT l.relay_id AS id
        FROM relay_metadata_latest AS l
        WHERE l.nip66_data -> 'readable' = 'true'::jsonb
        UNION
        SELECT r.id
        FROM relays AS r
        WHERE r.id = ANY (coalesce(p_extra_relay_ids, '{}'))
    ) AS c
    ORDER BY c.id
    ON CONFLICT (relay_id) DO NOTHING;

    -- A second statement, hence a new snapshot. FOR UPDATE re-checks the
    -- lease of a row that a concurrent claim has just committed, and SKIP
    -- LOCKED passes over rows being claimed right now.
    RETURN QUERY
    WITH candidates AS (
        SELECT l.relay_id AS id
        FROM relay_metadata_latest AS l
        WHERE l.nip66_data -> 'readable' = 'true'::jsonb
        UNION
        SELECT unnest(coalesce(p_extra_relay_ids, '{}'))
    ),
    claimable AS (
        SELECT s.relay_id
        FROM sync_cursors AS s
        JOIN relays AS r ON r.id = s.relay_id
        WHERE s.relay_id IN (SELECT id FROM candidates)
          AND r.network = ANY (p_networks)
          AND NOT (s.relay_id = ANY (coalesce(p_exclude_ids, '{}')))
          AND (s.last_synced_ms IS NULL OR s.last_synced_ms <= p_synced_before_ms)
          AND (s.lease_until IS NULL OR s.lease_until <= v_now OR s.lease_worker = p_worker)
        ORDER BY s.last_synced_ms ASC NULLS FIRST, s.relay_id
        LIMIT greatest(p_limit, 0)
        FOR UPDATE OF s SKIP LOCKED
    ),
    claimed AS (
        UPDATE sync_cursors AS s
        SET lease_worker = p_worker,
            lease_until = v_now + p_lease_seconds
        FROM claimable AS c
        WHERE s.relay_id = c.relay_id
        RETURNING s.relay_id, s.created_at, s.event_id, s.filter_hash, s.last_synced_ms
    )
    SELECT c.relay_id,
           r.url,
           r.network,
           CASE WHEN jsonb_typeof(l.nip11_data #> '{limitation,max_limit}') = 'number'
                THEN least(greatest(floor((l.nip11_data #>> '{limitation,max_limit}')::numeric), 0),
                           2147483647)::integer
           END,
           c.created_at,
           c.event_id,
           c.filter_hash
    FROM claimed AS c
    JOIN relays AS r ON r.id = c.relay_id
    LEFT JOIN relay_metadata_latest AS l ON l.relay_id = c.relay_id
    ORDER BY c.last_synced_ms ASC NULLS FIRST, c.relay_id;
END;
$$;

COMMENT ON FUNCTION sync_claim_relays(text, text[], integer[], integer[], bigint, integer, integer) IS
    'Leases to worker p_worker, for p_lease_seconds, at most p_limit relays to sync: relays on one of p_networks that the latest check found readable (nip66 "readable": true) or that are listed in p_extra_relay_ids, not listed in p_exclude_ids, not synced after p_synced_before_ms (last_synced_ms NULL, earlier or equal; Unix milliseconds), and not leased to another worker (an expired lease counts as free). Never synced first, then least recently synced. Returns each with its URL, network, the max_limit of its latest NIP-11 document (NULL when unknown) and its cursor. Concurrent calls never return the same relay.';

-- ---------------------------------------------------------------------------
-- sync_renew_leases
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sync_renew_leases(
    p_worker        text,
    p_relay_ids     integer[],
    p_lease_seconds integer
)
RETURNS TABLE (relay_id integer)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
BEGIN
    IF p_lease_seconds IS NULL OR p_lease_seconds < 1 THEN
        RAISE EXCEPTION 'sync_renew_leases: p_lease_seconds must be at least 1, not %', p_lease_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH renewed AS (
        UPDATE sync_cursors AS s
        SET lease_until = v_now + p_lease_seconds
        WHERE s.relay_id IN (SELECT DISTINCT unnest(p_relay_ids) ORDER BY 1)
          AND s.lease_worker = p_worker
        RETURNING s.relay_id
    )
    SELECT renewed.relay_id FROM renewed ORDER BY renewed.relay_id;
END;
$$;

COMMENT ON FUNCTION sync_renew_leases(text, integer[], integer) IS
    'Extends to now + p_lease_seconds the leases p_worker still holds on p_relay_ids (expired ones too, unless another worker claimed them since), and returns the relays renewed. A relay missing from the result is no longer p_worker''s to sync.';

-- ---------------------------------------------------------------------------
-- sync_release_relays
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sync_release_relays(
    p_worker    text,
    p_relay_ids integer[]
)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_now_ms   bigint := floor(extract(epoch FROM now()) * 1000)::bigint;
    v_released bigint;
BEGIN
    UPDATE sync_cursors AS s
    SET lease_worker = NULL,
        lease_until = NULL,
        last_synced_ms = v_now_ms
    WHERE s.relay_id = ANY (p_relay_ids)
      AND s.lease_worker = p_worker;
    GET DIAGNOSTICS v_released = ROW_COUNT;
    RETURN v_released;
END;
$$;

COMMENT ON FUNCTION sync_release_relays(text, integer[]) IS
    'Ends the leases p_worker holds on p_relay_ids, recording now as their last_synced_ms, and returns how many it ended.';

-- ---------------------------------------------------------------------------
-- sync_advance_cursor
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sync_advance_cursor(
    p_worker      text,
    p_relay_id    integer,
    p_created_at  bigint,
    p_event_id    bytea,
    p_filter_hash bytea
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_now         bigint := floor(extract(epoch FROM now()))::bigint;
    v_created_at  bigint;
    v_event_id    bytea;
    v_filter_hash bytea;
BEGIN
    IF p_created_at IS NULL THEN
        RAISE EXCEPTION 'sync_advance_cursor: p_created_at must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.created_at, s.event_id, s.filter_hash
    INTO v_created_at, v_event_id, v_filter_hash
    FROM sync_cursors AS s
    WHERE s.relay_id = p_relay_id
      AND s.lease_worker = p_worker
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- Forward only, unless the filter changed: (second, NULL) is the end of
    -- the second, after every id of it.
    IF v_created_at IS NULL
       OR v_filter_hash IS DISTINCT FROM p_filter_hash
       OR p_created_at > v_created_at
       OR (p_created_at = v_created_at
           AND v_event_id IS NOT NULL
           AND (p_event_id IS NULL OR p_event_id > v_event_id))
    THEN
        UPDATE sync_cursors AS s
        SET created_at = p_created_at,
            event_id = p_event_id,
            filter_hash = p_filter_hash,
            updated_at = v_now
        WHERE s.relay_id = p_relay_id;
    END IF;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION sync_advance_cursor(text, integer, bigint, bytea, bytea) IS
    'Moves the cursor of relay p_relay_id forward to (p_created_at, p_event_id) for the filter p_filter_hash, if p_worker holds its lease; call it only once the events up to there are committed. A position behind the cursor leaves it where it is. Returns false when p_worker does not hold the lease (nothing is changed), true otherwise.';
