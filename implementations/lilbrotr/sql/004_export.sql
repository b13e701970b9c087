-- Reading archived events in bulk, for `bigbrotr export`.
--
-- Keyset pagination on (created_at, id): each page starts after the last row
-- of the one before, so a long export never re-reads or skips rows, and each
-- call is one short statement (safe behind PgBouncer in transaction mode),
-- served by the index events_created_at_id_idx.

CREATE OR REPLACE FUNCTION select_events(
    p_since            bigint,
    p_until            bigint,
    p_kinds            integer[],
    p_after_created_at bigint,
    p_after_id         bytea,
    p_limit            integer
)
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
    SELECT e.id, e.pubkey, e.created_at, e.kind, '[]'::jsonb, NULL::bytea, ''::text, NULL::bytea, e.sig
    FROM events AS e
    WHERE (p_since IS NULL OR e.created_at >= p_since)
      AND (p_until IS NULL OR e.created_at <= p_until)
      AND (p_kinds IS NULL OR e.kind = ANY (p_kinds))
      AND (p_after_created_at IS NULL
           OR (e.created_at, e.id) > (p_after_created_at, p_after_id))
    ORDER BY e.created_at, e.id
    LIMIT p_limit
$$;

COMMENT ON FUNCTION select_events(bigint, bigint, integer[], bigint, bytea, integer) IS
    'Up to p_limit events with p_since <= created_at <= p_until (NULL = unbounded) and kind in p_kinds (NULL = any), ordered by (created_at, id), starting after (p_after_created_at, p_after_id) (NULL = from the start). lilbrotr stores neither tags nor content: rows do not reproduce events (see get_event_by_id).';
