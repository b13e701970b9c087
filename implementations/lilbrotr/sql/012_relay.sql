-- What the archive relay (`bigbrotr run relay`) and the provenance endpoints
-- of the runtime's HTTP server read.
--
-- The relay's REQ, COUNT and NEG-OPEN queries are composed by the
-- application, one statement per filter, from the columns every
-- implementation's `events` table has (id, pubkey, created_at, kind,
-- tagvalues) and the indexes on them: a filter's shape decides which index
-- serves it, and a generic function with optional predicates would leave
-- the planner one plan for all shapes. The implementations whose
-- relay_serves_events() is true also have the columns an event is rebuilt
-- from (tags, tags_raw, content, content_raw, sig).
--
-- Events archived after a subscription's EOSE are found as the finder finds
-- sightings: events_relays in (insert_xid, seen_at, event_id, relay_id)
-- order up to the horizon below which every transaction has ended (see
-- 008_sightings.sql), so a batch committed late is not passed by.

CREATE OR REPLACE FUNCTION relay_serves_events()
RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT false
$$;

COMMENT ON FUNCTION relay_serves_events() IS
    'Whether this implementation keeps whole events, so that the relay can serve them as signed: false here: lilbrotr keeps neither content nor tags, and a rebuilt event would not verify.';

CREATE OR REPLACE FUNCTION relay_live_horizon()
RETURNS bigint
LANGUAGE sql
VOLATILE PARALLEL SAFE
AS $$
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint
$$;

COMMENT ON FUNCTION relay_live_horizon() IS
    'The transaction id below which every transaction has ended: sightings with a smaller insert_xid are final. The relay starts reading new events there.';

CREATE OR REPLACE FUNCTION relay_live_page(
    p_after_insert_xid bigint,
    p_after_seen_at    bigint,
    p_after_event_id   bytea,
    p_after_relay_id   integer,
    p_limit            integer
)
RETURNS TABLE (
    insert_xid  bigint,
    seen_at     bigint,
    event_id    bytea,
    relay_id    integer,
    first       boolean,
    pubkey      bytea,
    created_at  bigint,
    kind        integer,
    tagvalues   text[],
    tags        text,
    content     text,
    content_raw bytea,
    sig         bytea
)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    WITH horizon AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin
    ),
    page AS (
        SELECT er.insert_xid, er.seen_at, er.event_id, er.relay_id
        FROM events_relays AS er, horizon AS h
        WHERE (er.insert_xid, er.seen_at, er.event_id, er.relay_id)
              > (p_after_insert_xid::text::xid8, p_after_seen_at, p_after_event_id, p_after_relay_id)
          AND er.insert_xid < h.xmin
        ORDER BY er.insert_xid, er.seen_at, er.event_id, er.relay_id
        LIMIT greatest(p_limit, 1)
    )
    SELECT p.insert_xid::text::bigint, p.seen_at, p.event_id, p.relay_id,
           f.first IS NOT NULL,
           e.pubkey, e.created_at, e.kind, e.tagvalues,
           NULL::text,
           NULL::text, NULL::bytea, e.sig
    FROM page AS p
    -- The event's first sighting in this order; rows before it are final,
    -- so each event is handed out once, with its first sighting.
    LEFT JOIN LATERAL (
        SELECT true AS first
        WHERE NOT EXISTS (
            SELECT 1
            FROM events_relays AS o
            WHERE o.event_id = p.event_id
              AND (o.insert_xid, o.seen_at, o.relay_id) < (p.insert_xid, p.seen_at, p.relay_id)
        )
    ) AS f ON true
    LEFT JOIN events AS e ON f.first AND e.id = p.event_id
    ORDER BY p.insert_xid, p.seen_at, p.event_id, p.relay_id
$$;

COMMENT ON FUNCTION relay_live_page(bigint, bigint, bytea, integer, integer) IS
    'Up to p_limit sightings after the position (p_after_insert_xid, p_after_seen_at, p_after_event_id, p_after_relay_id) in (insert_xid, seen_at, event_id, relay_id) order, only below relay_live_horizon() of the same snapshot. first is true for an event''s first sighting in that order, and only then are the event''s columns given (tags and content are NULL: lilbrotr keeps neither); the other rows only move the position on.';

CREATE OR REPLACE FUNCTION event_relays(p_id bytea)
RETURNS TABLE (url text, network text, seen_at bigint)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT r.url, r.network, er.seen_at
    FROM events_relays AS er
    JOIN relays AS r ON r.id = er.relay_id
    WHERE er.event_id = p_id
    ORDER BY er.seen_at, r.url
$$;

COMMENT ON FUNCTION event_relays(bytea) IS
    'The relays that served the event p_id, with when each was first seen serving it, earliest first; no rows when the event is not archived.';

CREATE OR REPLACE FUNCTION relay_report(p_url text)
RETURNS TABLE (
    url          text,
    network      text,
    inserted_at  bigint,
    generated_at bigint,
    connected    boolean,
    nip11        jsonb,
    nip66        jsonb
)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT r.url, r.network, r.inserted_at, m.generated_at, m.connected, n11.data, n66.data
    FROM relays AS r
    LEFT JOIN LATERAL (
        SELECT rm.generated_at, rm.connected, rm.nip11_id, rm.nip66_id
        FROM relay_metadata AS rm
        WHERE rm.relay_id = r.id
        ORDER BY rm.generated_at DESC
        LIMIT 1
    ) AS m ON true
    LEFT JOIN nip11 AS n11 ON n11.id = m.nip11_id
    LEFT JOIN nip66 AS n66 ON n66.id = m.nip66_id
    WHERE r.url = p_url
$$;

COMMENT ON FUNCTION relay_report(text) IS
    'The relay with that exact (normalised) URL and its latest check: when, whether it connected, and the NIP-11 and NIP-66 documents (NULL when none, or when it was never checked). One row, or none when the relay is unknown.';
