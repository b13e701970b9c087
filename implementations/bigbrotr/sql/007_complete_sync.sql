-- What the synchronizer learns of each relay, the time ranges it could not
-- complete, and the calls that record sightings of events the archive holds
-- already. Every implementation provides the same functions with the same
-- arguments and results.
--
-- Relays cap what one REQ returns without saying so, and serve events whose
-- created_at lies behind the cursor. The synchronizer therefore pages inside
-- each window, learns each relay's effective cap (stored here), re-sweeps a
-- lookback period behind the cursor now and then, reconciles with NIP-77
-- where the relay speaks it, and records what it could not complete as
-- pending ranges, retried in later cycles, instead of passing over them.

-- ---------------------------------------------------------------------------
-- sync_cursors: what is learned of a relay
-- ---------------------------------------------------------------------------
ALTER TABLE sync_cursors
    ADD COLUMN effective_cap    integer CHECK (effective_cap > 0),
    ADD COLUMN nip77            boolean,
    ADD COLUMN nip77_checked_at bigint,
    ADD COLUMN auth_refused_at  bigint,
    ADD COLUMN resweep_at       bigint;

COMMENT ON COLUMN sync_cursors.effective_cap IS
    'The most events the relay ever returned to one REQ: an answer reaching it is taken as possibly cut short and paged further. NULL: not learned yet.';
COMMENT ON COLUMN sync_cursors.nip77 IS
    'Whether the relay answered NEG-OPEN (NIP-77 negentropy) the last time it was probed: true, it is reconciled; false, it is walked with REQs. NULL: never probed.';
COMMENT ON COLUMN sync_cursors.nip77_checked_at IS
    'When nip77 was last probed (Unix seconds); the relay is probed again after the configured time.';
COMMENT ON COLUMN sync_cursors.auth_refused_at IS
    'When the relay last refused the archiver''s NIP-42 authentication (Unix seconds); it is not asked again until the configured time has passed. NULL: never refused.';
COMMENT ON COLUMN sync_cursors.resweep_at IS
    'When the lookback period behind the cursor was last re-swept completely for events that reached the relay late (Unix seconds). NULL: never.';

-- ---------------------------------------------------------------------------
-- sync_pending
-- ---------------------------------------------------------------------------
CREATE TABLE sync_pending (
    relay_id        integer NOT NULL REFERENCES relays (id) ON DELETE CASCADE,
    filter_hash     bytea   NOT NULL CHECK (octet_length(filter_hash) = 32),
    since           bigint  NOT NULL,
    until           bigint  NOT NULL,
    reason          text    NOT NULL CHECK (reason IN ('capped', 'unserved')),
    events_seen     integer NOT NULL CHECK (events_seen >= 0),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    recorded_at     bigint  NOT NULL,
    last_attempt_at bigint,
    PRIMARY KEY (relay_id, filter_hash, since, until),
    CHECK (since <= until)
);

COMMENT ON TABLE sync_pending IS
    'Time ranges of a relay whose events could not all be fetched: the cursor passed them, and they are retried in later cycles (by NIP-77 reconciliation where the relay speaks it) until complete. A row goes with its relay.';
COMMENT ON COLUMN sync_pending.relay_id IS 'The relay (relays.id).';
COMMENT ON COLUMN sync_pending.filter_hash IS 'SHA-256 of the filter the range was walked with (as sync_cursors.filter_hash).';
COMMENT ON COLUMN sync_pending.since IS 'First second of the range (Unix seconds, created_at).';
COMMENT ON COLUMN sync_pending.until IS 'Last second of the range, included; equal to since for a single second.';
COMMENT ON COLUMN sync_pending.reason IS
    '''capped'': one second holds more events than the relay returns to one REQ; ''unserved'': the relay listed events in NIP-77 reconciliation that it did not serve when asked for by id.';
COMMENT ON COLUMN sync_pending.events_seen IS 'The most events of the range fetched in one attempt.';
COMMENT ON COLUMN sync_pending.attempts IS 'Retries so far.';
COMMENT ON COLUMN sync_pending.recorded_at IS 'When the range was first recorded (Unix seconds).';
COMMENT ON COLUMN sync_pending.last_attempt_at IS 'When it was last retried (Unix seconds); NULL: not yet.';

-- ---------------------------------------------------------------------------
-- sync_get_state, sync_set_state
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sync_get_state(p_relay_id integer)
RETURNS TABLE (
    effective_cap    integer,
    nip77            boolean,
    nip77_checked_at bigint,
    auth_refused_at  bigint,
    resweep_at       bigint
)
LANGUAGE sql
STABLE
AS $$
    SELECT s.effective_cap, s.nip77, s.nip77_checked_at, s.auth_refused_at, s.resweep_at
    FROM sync_cursors AS s
    WHERE s.relay_id = p_relay_id
$$;

COMMENT ON FUNCTION sync_get_state(integer) IS
    'What the synchronizer learned of relay p_relay_id: its effective cap, whether it speaks NIP-77 and when that was probed, when it last refused authentication, when it was last re-swept. No row when the relay was never claimed.';

CREATE OR REPLACE FUNCTION sync_set_state(
    p_worker           text,
    p_relay_id         integer,
    p_effective_cap    integer,
    p_nip77            boolean,
    p_nip77_checked_at bigint,
    p_auth_refused_at  bigint,
    p_resweep_at       bigint
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_updated integer;
BEGIN
    UPDATE sync_cursors AS s
    SET effective_cap = greatest(s.effective_cap, p_effective_cap),
        nip77 = p_nip77,
        nip77_checked_at = p_nip77_checked_at,
        auth_refused_at = p_auth_refused_at,
        resweep_at = p_resweep_at
    WHERE s.relay_id = p_relay_id
      AND s.lease_worker = p_worker;
    GET DIAGNOSTICS v_updated = ROW_COUNT;
    RETURN v_updated > 0;
END;
$$;

COMMENT ON FUNCTION sync_set_state(text, integer, integer, boolean, bigint, bigint, bigint) IS
    'Records what p_worker learned of relay p_relay_id (see sync_get_state), if it holds the relay''s lease; the effective cap only grows. Returns false when the lease is not p_worker''s (nothing is changed).';

-- ---------------------------------------------------------------------------
-- sync_add_pending, sync_due_pending, sync_pending_attempted, sync_pending_done
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sync_add_pending(
    p_relay_id    integer,
    p_filter_hash bytea,
    p_since       bigint,
    p_until       bigint,
    p_reason      text,
    p_events_seen integer,
    p_now         bigint
)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO sync_pending AS p (relay_id, filter_hash, since, until, reason, events_seen, recorded_at)
    VALUES (p_relay_id, p_filter_hash, p_since, p_until, p_reason, greatest(p_events_seen, 0), p_now)
    ON CONFLICT (relay_id, filter_hash, since, until) DO UPDATE
        SET events_seen = greatest(p.events_seen, EXCLUDED.events_seen),
            reason = EXCLUDED.reason
$$;

COMMENT ON FUNCTION sync_add_pending(integer, bytea, bigint, bigint, text, integer, bigint) IS
    'Records the range p_since..p_until of relay p_relay_id (filter p_filter_hash) as pending for p_reason, with p_events_seen events fetched of it; a range already pending keeps its attempts and the larger count.';

CREATE OR REPLACE FUNCTION sync_due_pending(
    p_relay_id    integer,
    p_filter_hash bytea,
    p_limit       integer
)
RETURNS TABLE (since bigint, until bigint, reason text, events_seen integer, attempts integer)
LANGUAGE sql
STABLE
AS $$
    SELECT p.since, p.until, p.reason, p.events_seen, p.attempts
    FROM sync_pending AS p
    WHERE p.relay_id = p_relay_id
      AND p.filter_hash = p_filter_hash
    ORDER BY p.attempts, p.since
    LIMIT greatest(p_limit, 0)
$$;

COMMENT ON FUNCTION sync_due_pending(integer, bytea, integer) IS
    'At most p_limit pending ranges of relay p_relay_id for filter p_filter_hash, the least retried first, then the oldest.';

CREATE OR REPLACE FUNCTION sync_pending_attempted(
    p_relay_id    integer,
    p_filter_hash bytea,
    p_since       bigint,
    p_until       bigint,
    p_events_seen integer,
    p_now         bigint
)
RETURNS void
LANGUAGE sql
AS $$
    UPDATE sync_pending AS p
    SET attempts = p.attempts + 1,
        last_attempt_at = p_now,
        events_seen = greatest(p.events_seen, p_events_seen)
    WHERE p.relay_id = p_relay_id
      AND p.filter_hash = p_filter_hash
      AND p.since = p_since
      AND p.until = p_until
$$;

COMMENT ON FUNCTION sync_pending_attempted(integer, bytea, bigint, bigint, integer, bigint) IS
    'Counts a retry of a pending range that is still not complete.';

CREATE OR REPLACE FUNCTION sync_pending_done(
    p_relay_id    integer,
    p_filter_hash bytea,
    p_since       bigint,
    p_until       bigint
)
RETURNS void
LANGUAGE sql
AS $$
    DELETE FROM sync_pending AS p
    WHERE p.relay_id = p_relay_id
      AND p.filter_hash = p_filter_hash
      AND p.since = p_since
      AND p.until = p_until
$$;

COMMENT ON FUNCTION sync_pending_done(integer, bytea, bigint, bigint) IS
    'Removes a pending range whose events are now archived completely.';

CREATE OR REPLACE FUNCTION sync_pending_count()
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT count(*) FROM sync_pending
$$;

COMMENT ON FUNCTION sync_pending_count() IS
    'How many ranges are pending, all relays together.';

-- ---------------------------------------------------------------------------
-- sync_relay_event_ids, insert_sightings
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sync_relay_event_ids(
    p_relay_id integer,
    p_since    bigint,
    p_until    bigint
)
RETURNS TABLE (id bytea, created_at bigint)
LANGUAGE sql
STABLE
AS $$
    SELECT e.id, e.created_at
    FROM events AS e
    JOIN events_relays AS er ON er.event_id = e.id AND er.relay_id = p_relay_id
    WHERE e.created_at BETWEEN p_since AND p_until
$$;

COMMENT ON FUNCTION sync_relay_event_ids(integer, bigint, bigint) IS
    'The events archived with provenance to relay p_relay_id and created from p_since to p_until (both included): the set a NIP-77 reconciliation of that window starts from.';

CREATE OR REPLACE FUNCTION insert_sightings(
    p_relay_id integer,
    p_ids      bytea[],
    p_seen_at  bigint
)
RETURNS TABLE (event_id bytea)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    -- Shared with insert_events(); deletes of events or relays take it
    -- exclusively (see events_relays).
    PERFORM pg_advisory_xact_lock_shared(1650619506);
    IF NOT EXISTS (SELECT 1 FROM relays WHERE relays.id = p_relay_id) THEN
        RAISE EXCEPTION 'insert_sightings: relay % does not exist', p_relay_id
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'events_relays_relay_id_fkey';
    END IF;
    RETURN QUERY
    WITH known AS (
        SELECT e.id
        FROM events AS e
        WHERE e.id = ANY (p_ids)
    ),
    added AS (
        INSERT INTO events_relays (event_id, relay_id, seen_at)
        SELECT k.id, p_relay_id, p_seen_at
        FROM known AS k
        ORDER BY k.id
        ON CONFLICT (event_id, relay_id) DO NOTHING
    )
    SELECT k.id FROM known AS k;
END;
$$;

COMMENT ON FUNCTION insert_sightings(integer, bytea[], bigint) IS
    'Records that relay p_relay_id serves the events p_ids the archive already holds (seen at p_seen_at), without their bodies, and returns the ids of p_ids the archive holds; the others are not archived yet and must be fetched. A relay that does not exist raises foreign_key_violation.';
