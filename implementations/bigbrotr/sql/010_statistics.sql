-- Statistics of the archive for operators: materialized views, refreshed by
-- the refresher service (`bigbrotr run refresher`) through
-- refresh_stats_view(), in the order stats_views() gives. Each holds the
-- archive as of its last refresh, recorded in stats_refreshes; between two
-- refreshes it does not move. Every implementation provides the same views,
-- with the same columns, and the same functions.
--
-- Every view has a unique index on plain columns, so that it can be
-- refreshed CONCURRENTLY: readers keep reading the previous contents while
-- it is recomputed. The views are created WITH NO DATA, so that applying
-- this file costs nothing however large the archive already is; the first
-- refresh of each fills it (without CONCURRENTLY, which an empty view does
-- not allow), and until then reading it fails with SQLSTATE 55000 ("has not
-- been populated").
--
-- The views read only the columns every implementation keeps (events.id,
-- pubkey, created_at, kind and tagvalues; events_relays; relays; the NIP-11
-- documents), never content or tags. So they hold the same in `bigbrotr`
-- and in `lilbrotr`, and the `d` tag of an addressable event is read from
-- tagvalues, which holds values of at most 256 bytes: an index key stays
-- small whatever a stranger publishes.
--
-- Some views are computed from others (stats_relays from stats_relay_kinds,
-- stats_software and stats_nips from stats_relay_software, stats_networks
-- and stats_totals from several): stats_views() lists each after those it
-- reads, and such a view is as fresh as they were when it was refreshed.

-- ---------------------------------------------------------------------------
-- stats_refreshes
-- ---------------------------------------------------------------------------
CREATE TABLE stats_refreshes (
    view_name    text   PRIMARY KEY,
    refreshed_at bigint NOT NULL,
    duration_ms  bigint NOT NULL CHECK (duration_ms >= 0)
);

COMMENT ON TABLE stats_refreshes IS
    'When each statistics view was last refreshed by refresh_stats_view(): its contents are the archive as of refreshed_at. A view without a row here has never been refreshed.';
COMMENT ON COLUMN stats_refreshes.view_name IS 'The view (one of stats_views()).';
COMMENT ON COLUMN stats_refreshes.refreshed_at IS
    'When its last refresh began (Unix seconds): what the view shows is the archive as of then.';
COMMENT ON COLUMN stats_refreshes.duration_ms IS 'How long that refresh took, in milliseconds.';

-- ---------------------------------------------------------------------------
-- stats_relay_kinds
-- ---------------------------------------------------------------------------
CREATE MATERIALIZED VIEW stats_relay_kinds AS
SELECT er.relay_id,
       e.kind,
       count(*)          AS events,
       min(e.created_at) AS first_created_at,
       max(e.created_at) AS last_created_at
FROM events_relays AS er
JOIN events AS e ON e.id = er.event_id
GROUP BY er.relay_id, e.kind
WITH NO DATA;

CREATE UNIQUE INDEX stats_relay_kinds_key ON stats_relay_kinds (relay_id, kind);

COMMENT ON MATERIALIZED VIEW stats_relay_kinds IS
    'Events seen on each relay, by kind: one row per (relay, kind) with at least one event. As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_relay_kinds.relay_id IS 'relays.id.';
COMMENT ON COLUMN stats_relay_kinds.kind IS 'Event kind.';
COMMENT ON COLUMN stats_relay_kinds.events IS 'Events of that kind seen on the relay (events_relays rows).';
COMMENT ON COLUMN stats_relay_kinds.first_created_at IS 'Oldest created_at among them (Unix seconds).';
COMMENT ON COLUMN stats_relay_kinds.last_created_at IS 'Newest created_at among them (Unix seconds).';

-- ---------------------------------------------------------------------------
-- stats_relays
-- ---------------------------------------------------------------------------
CREATE MATERIALIZED VIEW stats_relays AS
SELECT r.id                      AS relay_id,
       r.url,
       r.network,
       coalesce(k.events, 0)     AS events,
       k.first_created_at,
       k.last_created_at,
       s.last_seen_at
FROM relays AS r
LEFT JOIN (
    SELECT rk.relay_id,
           sum(rk.events)::bigint   AS events,
           min(rk.first_created_at) AS first_created_at,
           max(rk.last_created_at)  AS last_created_at
    FROM stats_relay_kinds AS rk
    GROUP BY rk.relay_id
) AS k ON k.relay_id = r.id
-- One backward probe of events_relays_relay_id_seen_at_idx per relay.
LEFT JOIN LATERAL (
    SELECT max(er.seen_at) AS last_seen_at
    FROM events_relays AS er
    WHERE er.relay_id = r.id
) AS s ON true
WITH NO DATA;

CREATE UNIQUE INDEX stats_relays_key ON stats_relays (relay_id);

COMMENT ON MATERIALIZED VIEW stats_relays IS
    'Every relay with the events seen on it: how many, the oldest and newest created_at among them, and when it last served one. Relays that served nothing have 0 events and NULL times. Computed from stats_relay_kinds and events_relays; as of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_relays.relay_id IS 'relays.id.';
COMMENT ON COLUMN stats_relays.url IS 'relays.url.';
COMMENT ON COLUMN stats_relays.network IS 'relays.network: clearnet or tor.';
COMMENT ON COLUMN stats_relays.events IS 'Events seen on the relay (events_relays rows).';
COMMENT ON COLUMN stats_relays.first_created_at IS 'Oldest created_at of those events (Unix seconds); NULL when none.';
COMMENT ON COLUMN stats_relays.last_created_at IS 'Newest created_at of those events (Unix seconds); NULL when none.';
COMMENT ON COLUMN stats_relays.last_seen_at IS 'Latest events_relays.seen_at of the relay: when it last served an event new to it (Unix seconds); NULL when none.';

-- ---------------------------------------------------------------------------
-- stats_networks
-- ---------------------------------------------------------------------------
CREATE MATERIALIZED VIEW stats_networks AS
SELECT n.network,
       n.relays,
       coalesce(d.events, 0) AS events,
       n.sightings
FROM (
    SELECT sr.network, count(*) AS relays, sum(sr.events)::bigint AS sightings
    FROM stats_relays AS sr
    GROUP BY sr.network
) AS n
LEFT JOIN (
    -- DISTINCT in a subquery is hashed; count(DISTINCT) would sort every
    -- sighting.
    SELECT ne.network, count(*) AS events
    FROM (
        SELECT DISTINCT r.network, er.event_id
        FROM events_relays AS er
        JOIN relays AS r ON r.id = er.relay_id
    ) AS ne
    GROUP BY ne.network
) AS d ON d.network = n.network
WITH NO DATA;

CREATE UNIQUE INDEX stats_networks_key ON stats_networks (network);

COMMENT ON MATERIALIZED VIEW stats_networks IS
    'Each network that has relays (clearnet, tor): its relays, the distinct events seen on at least one of them, and its sightings. Relays and sightings come from stats_relays; as of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_networks.network IS 'relays.network: clearnet or tor.';
COMMENT ON COLUMN stats_networks.relays IS 'Relays of the network.';
COMMENT ON COLUMN stats_networks.events IS 'Distinct events seen on at least one relay of the network.';
COMMENT ON COLUMN stats_networks.sightings IS 'events_relays rows of its relays: an event seen on two of them counts twice.';

-- ---------------------------------------------------------------------------
-- stats_kinds
-- ---------------------------------------------------------------------------
CREATE MATERIALIZED VIEW stats_kinds AS
SELECT e.kind, count(*) AS events
FROM events AS e
GROUP BY e.kind
WITH NO DATA;

CREATE UNIQUE INDEX stats_kinds_key ON stats_kinds (kind);

COMMENT ON MATERIALIZED VIEW stats_kinds IS
    'Events archived per kind, every relay together: one row per kind with at least one event. As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_kinds.kind IS 'Event kind.';
COMMENT ON COLUMN stats_kinds.events IS 'Distinct events of that kind.';

-- ---------------------------------------------------------------------------
-- stats_pubkeys
-- ---------------------------------------------------------------------------
CREATE MATERIALIZED VIEW stats_pubkeys AS
SELECT pk.pubkey,
       sum(pk.events)::bigint   AS events,
       count(*)                 AS kinds,
       min(pk.first_created_at) AS first_created_at,
       max(pk.last_created_at)  AS last_created_at
FROM (
    -- Per (pubkey, kind) first: one hashed pass instead of a sort for
    -- count(DISTINCT kind).
    SELECT e.pubkey, e.kind, count(*) AS events,
           min(e.created_at) AS first_created_at, max(e.created_at) AS last_created_at
    FROM events AS e
    GROUP BY e.pubkey, e.kind
) AS pk
GROUP BY pk.pubkey
WITH NO DATA;

CREATE UNIQUE INDEX stats_pubkeys_key ON stats_pubkeys (pubkey);

COMMENT ON MATERIALIZED VIEW stats_pubkeys IS
    'Each author (pubkey) with the events archived from it: how many, of how many kinds, the oldest and newest created_at. As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_pubkeys.pubkey IS 'Author''s public key, 32 bytes.';
COMMENT ON COLUMN stats_pubkeys.events IS 'Events archived from it.';
COMMENT ON COLUMN stats_pubkeys.kinds IS 'Distinct kinds among them.';
COMMENT ON COLUMN stats_pubkeys.first_created_at IS 'Oldest created_at among them (Unix seconds).';
COMMENT ON COLUMN stats_pubkeys.last_created_at IS 'Newest created_at among them (Unix seconds).';

-- ---------------------------------------------------------------------------
-- stats_daily
-- ---------------------------------------------------------------------------
-- Dates by integer arithmetic: independent of the session's time zone, and
-- no error for a created_at beyond what a timestamp holds (authors may
-- claim any time).
CREATE MATERIALIZED VIEW stats_daily AS
SELECT CASE WHEN e.created_at BETWEEN 0 AND 253402300799
            THEN DATE '1970-01-01' + (e.created_at / 86400)::integer
       END AS day,
       count(*) AS events
FROM events AS e
GROUP BY 1
WITH NO DATA;

CREATE UNIQUE INDEX stats_daily_key ON stats_daily (day);

COMMENT ON MATERIALIZED VIEW stats_daily IS
    'Events archived per day of their created_at (UTC date), one row per day with at least one event; one row with day NULL counts the events whose created_at lies outside the years 1970 to 9999. As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_daily.day IS 'The UTC date of created_at; NULL for a created_at before 1970 or after 9999.';
COMMENT ON COLUMN stats_daily.events IS 'Events created that day.';

-- ---------------------------------------------------------------------------
-- stats_replaceable_latest, stats_addressable_latest
-- ---------------------------------------------------------------------------
-- NIP-01: of the replaceable events (kinds 0, 3, 10000-19999) of one pubkey
-- and kind, and of the addressable events (30000-39999) of one pubkey, kind
-- and d tag, only the latest counts: the newest created_at, and of several
-- with that created_at, the lowest id.
CREATE MATERIALIZED VIEW stats_replaceable_latest AS
SELECT DISTINCT ON (e.pubkey, e.kind)
       e.pubkey, e.kind, e.id, e.created_at
FROM events AS e
WHERE e.kind IN (0, 3) OR e.kind BETWEEN 10000 AND 19999
ORDER BY e.pubkey, e.kind, e.created_at DESC, e.id
WITH NO DATA;

CREATE UNIQUE INDEX stats_replaceable_latest_key ON stats_replaceable_latest (pubkey, kind);

COMMENT ON MATERIALIZED VIEW stats_replaceable_latest IS
    'The latest archived replaceable event (kinds 0, 3 and 10000 to 19999) of each pubkey and kind, as NIP-01 decides: the newest created_at, and of several with that created_at the lowest id. As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_replaceable_latest.pubkey IS 'Author''s public key, 32 bytes.';
COMMENT ON COLUMN stats_replaceable_latest.kind IS 'Event kind: 0, 3 or 10000 to 19999.';
COMMENT ON COLUMN stats_replaceable_latest.id IS 'The latest event (events.id).';
COMMENT ON COLUMN stats_replaceable_latest.created_at IS 'Its created_at (Unix seconds).';

-- The d value is read from tagvalues ('d:<value>'), which every
-- implementation keeps: values of at most 256 bytes, without duplicates,
-- sorted. NIP-01 takes the first d tag; an event with several d tags is
-- taken here under the smallest value, and one whose only d value is longer
-- than 256 bytes under the empty d, as an event without d tag.
CREATE MATERIALIZED VIEW stats_addressable_latest AS
SELECT DISTINCT ON (a.pubkey, a.kind, a.d)
       a.pubkey, a.kind, a.d, a.id, a.created_at
FROM (
    SELECT e.pubkey,
           e.kind,
           coalesce((SELECT min(substr(v, 3) COLLATE "C")
                     FROM unnest(e.tagvalues) AS v
                     WHERE left(v, 2) = 'd:'), '') AS d,
           e.id,
           e.created_at
    FROM events AS e
    WHERE e.kind BETWEEN 30000 AND 39999
) AS a
ORDER BY a.pubkey, a.kind, a.d, a.created_at DESC, a.id
WITH NO DATA;

CREATE UNIQUE INDEX stats_addressable_latest_key ON stats_addressable_latest (pubkey, kind, d);

COMMENT ON MATERIALIZED VIEW stats_addressable_latest IS
    'The latest archived addressable event (kinds 30000 to 39999) of each pubkey, kind and d tag, as NIP-01 decides: the newest created_at, and of several with that created_at the lowest id. The d value comes from tagvalues: an event without d tag (or whose d value is longer than 256 bytes) has d = ''''; of several d tags, the smallest value counts. As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_addressable_latest.pubkey IS 'Author''s public key, 32 bytes.';
COMMENT ON COLUMN stats_addressable_latest.kind IS 'Event kind: 30000 to 39999.';
COMMENT ON COLUMN stats_addressable_latest.d IS 'The value of the d tag; empty when there is none.';
COMMENT ON COLUMN stats_addressable_latest.id IS 'The latest event (events.id).';
COMMENT ON COLUMN stats_addressable_latest.created_at IS 'Its created_at (Unix seconds).';

-- ---------------------------------------------------------------------------
-- stats_relay_software, stats_software, stats_nips
-- ---------------------------------------------------------------------------
-- NIP-11 documents are written by relay operators: a field may be missing,
-- of another JSON type, or huge. Text is cut to 256 characters (an index key
-- must stay small), and supported_nips keeps the elements that are whole
-- numbers (or strings of digits) from 0 to 99999.
CREATE MATERIALIZED VIEW stats_relay_software AS
SELECT r.id                                AS relay_id,
       r.url,
       r.network,
       m.generated_at                      AS nip11_at,
       left(n.data ->> 'software', 256)    AS software,
       left(n.data ->> 'version', 256)     AS version,
       nips.supported_nips
FROM relays AS r
-- The latest check that obtained a NIP-11 document, by a backward walk of
-- the primary key (relay_id, generated_at).
CROSS JOIN LATERAL (
    SELECT rm.generated_at, rm.nip11_id
    FROM relay_metadata AS rm
    WHERE rm.relay_id = r.id
      AND rm.nip11_id IS NOT NULL
    ORDER BY rm.generated_at DESC
    LIMIT 1
) AS m
JOIN nip11 AS n ON n.id = m.nip11_id
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(DISTINCT (j.value #>> '{}')::integer
                              ORDER BY (j.value #>> '{}')::integer), '{}') AS supported_nips
    FROM jsonb_array_elements(
             CASE WHEN jsonb_typeof(n.data -> 'supported_nips') = 'array'
                  THEN n.data -> 'supported_nips' ELSE '[]'::jsonb END
         ) AS j (value)
    WHERE jsonb_typeof(j.value) IN ('number', 'string')
      AND (j.value #>> '{}') ~ '^[0-9]{1,5}$'
) AS nips
WITH NO DATA;

CREATE UNIQUE INDEX stats_relay_software_key ON stats_relay_software (relay_id);

COMMENT ON MATERIALIZED VIEW stats_relay_software IS
    'Each relay that ever served a NIP-11 document, with the software, version and supported NIPs of the latest one (relay_metadata_latest shows the latest check, which may have obtained none). As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_relay_software.relay_id IS 'relays.id.';
COMMENT ON COLUMN stats_relay_software.url IS 'relays.url.';
COMMENT ON COLUMN stats_relay_software.network IS 'relays.network: clearnet or tor.';
COMMENT ON COLUMN stats_relay_software.nip11_at IS 'When that document was obtained (relay_metadata.generated_at, Unix seconds).';
COMMENT ON COLUMN stats_relay_software.software IS 'Its "software" (as text, at most 256 characters); NULL when absent.';
COMMENT ON COLUMN stats_relay_software.version IS 'Its "version" (as text, at most 256 characters); NULL when absent.';
COMMENT ON COLUMN stats_relay_software.supported_nips IS 'Its "supported_nips": the whole numbers from 0 to 99999 listed (as numbers or strings of digits), sorted, each once; empty when none.';

CREATE MATERIALIZED VIEW stats_software AS
SELECT coalesce(rs.software, '') AS software,
       coalesce(rs.version, '')  AS version,
       count(*)                  AS relays
FROM stats_relay_software AS rs
GROUP BY 1, 2
WITH NO DATA;

CREATE UNIQUE INDEX stats_software_key ON stats_software (software, version);

COMMENT ON MATERIALIZED VIEW stats_software IS
    'Relays per software and version, from the latest NIP-11 document of each (stats_relay_software). As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_software.software IS 'The document''s "software"; empty when absent.';
COMMENT ON COLUMN stats_software.version IS 'The document''s "version"; empty when absent.';
COMMENT ON COLUMN stats_software.relays IS 'Relays whose latest document says so.';

CREATE MATERIALIZED VIEW stats_nips AS
SELECT nip.nip, count(*) AS relays
FROM stats_relay_software AS rs
CROSS JOIN LATERAL unnest(rs.supported_nips) AS nip (nip)
GROUP BY nip.nip
WITH NO DATA;

CREATE UNIQUE INDEX stats_nips_key ON stats_nips (nip);

COMMENT ON MATERIALIZED VIEW stats_nips IS
    'Relays per NIP listed in supported_nips of their latest NIP-11 document (stats_relay_software). As of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_nips.nip IS 'The NIP number.';
COMMENT ON COLUMN stats_nips.relays IS 'Relays whose latest document lists it.';

-- ---------------------------------------------------------------------------
-- stats_totals
-- ---------------------------------------------------------------------------
CREATE MATERIALIZED VIEW stats_totals AS
SELECT 1 AS id,
       (SELECT coalesce(sum(k.events), 0)::bigint FROM stats_kinds AS k)  AS events,
       (SELECT count(*) FROM stats_pubkeys)                               AS pubkeys,
       (SELECT count(*) FROM stats_kinds)                                 AS kinds,
       (SELECT count(*) FROM stats_relays)                                AS relays,
       (SELECT coalesce(sum(r.events), 0)::bigint FROM stats_relays AS r) AS sightings
WITH NO DATA;

CREATE UNIQUE INDEX stats_totals_key ON stats_totals (id);

COMMENT ON MATERIALIZED VIEW stats_totals IS
    'The archive in one row: events, distinct authors, distinct kinds, relays and sightings. Computed from stats_kinds, stats_pubkeys and stats_relays (refreshed before it); as of its last refresh by the refresher (stats_refreshes).';
COMMENT ON COLUMN stats_totals.id IS 'Always 1: the key of the only row.';
COMMENT ON COLUMN stats_totals.events IS 'Events archived.';
COMMENT ON COLUMN stats_totals.pubkeys IS 'Distinct authors of those events.';
COMMENT ON COLUMN stats_totals.kinds IS 'Distinct kinds of those events.';
COMMENT ON COLUMN stats_totals.relays IS 'Relays known.';
COMMENT ON COLUMN stats_totals.sightings IS 'events_relays rows: which relay served which event.';

-- ---------------------------------------------------------------------------
-- stats_views, refresh_stats_view
-- ---------------------------------------------------------------------------
-- STABLE, not IMMUTABLE: an implementation may redefine it in a later file
-- to add views of its own, and no caller may keep the old list.
CREATE OR REPLACE FUNCTION stats_views()
RETURNS text[]
LANGUAGE sql
STABLE
AS $$
    SELECT ARRAY[
        'stats_relay_kinds',
        'stats_relays',
        'stats_networks',
        'stats_kinds',
        'stats_pubkeys',
        'stats_daily',
        'stats_replaceable_latest',
        'stats_addressable_latest',
        'stats_relay_software',
        'stats_software',
        'stats_nips',
        'stats_totals'
    ]
$$;

COMMENT ON FUNCTION stats_views() IS
    'The statistics views, each after the views it is computed from: the order in which the refresher refreshes them, and the only names refresh_stats_view() accepts.';

-- SECURITY DEFINER: refreshing a materialized view takes its owner, and the
-- services may log in as a writer role that owns nothing (bigbrotr db init,
-- pool.yaml roles); only the names stats_views() lists can be refreshed, and
-- only roles granted EXECUTE (the owner, the writer) may call it.
CREATE OR REPLACE FUNCTION refresh_stats_view(p_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_view      regclass;
    v_populated boolean;
    v_started   timestamptz := clock_timestamp();
BEGIN
    IF p_name IS NULL OR NOT (p_name = ANY (stats_views())) THEN
        RAISE EXCEPTION 'refresh_stats_view: % is not a statistics view', coalesce(quote_literal(p_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'stats_views() lists them.';
    END IF;
    v_view := to_regclass(quote_ident(p_name));
    SELECT c.relispopulated INTO v_populated
    FROM pg_class AS c
    WHERE c.oid = v_view AND c.relkind = 'm';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refresh_stats_view: materialized view % does not exist', p_name
            USING ERRCODE = 'undefined_table';
    END IF;
    -- CONCURRENTLY keeps the view readable while it is recomputed, but needs
    -- it populated: the first refresh fills it plainly.
    IF v_populated THEN
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s', v_view);
    ELSE
        EXECUTE format('REFRESH MATERIALIZED VIEW %s', v_view);
    END IF;
    INSERT INTO stats_refreshes AS s (view_name, refreshed_at, duration_ms)
    VALUES (p_name,
            floor(extract(epoch FROM v_started))::bigint,
            floor(extract(epoch FROM clock_timestamp() - v_started) * 1000)::bigint)
    ON CONFLICT (view_name) DO UPDATE
        SET refreshed_at = EXCLUDED.refreshed_at,
            duration_ms = EXCLUDED.duration_ms;
END;
$$;

COMMENT ON FUNCTION refresh_stats_view(text) IS
    'Refreshes the statistics view p_name (one of stats_views(), else SQLSTATE 22023), CONCURRENTLY once it has been populated (readers see the previous contents meanwhile), and records when in stats_refreshes. A view that does not exist raises SQLSTATE 42P01. May run inside a transaction, e.g. after SET LOCAL statement_timeout. Runs as the owner of the views (SECURITY DEFINER); EXECUTE is revoked from PUBLIC.';

REVOKE EXECUTE ON FUNCTION refresh_stats_view(text) FROM PUBLIC;
